package sqlgen_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/ai/sqlgen"
	"github.com/palisadehq/palisade/sqlguard"
)

func Example() {
	schema := sqlgen.Schema{Dialect: sqlguard.MySQL, Tables: []sqlgen.Table{{
		Name: "sales",
		Columns: []sqlgen.Column{
			{Name: "region", Type: "varchar(32)"}, {Name: "product", Type: "varchar(64)"},
			{Name: "amount", Type: "decimal(10,2)"}, {Name: "sold_at", Type: "date"},
		},
	}}}
	tr := sqlgen.NewBuiltin().WithClock(func() time.Time { return time.Date(2024, 3, 31, 9, 0, 0, 0, time.UTC) })
	ctx := context.Background()

	t, err := tr.Translate(ctx, schema, "top 3 products by total amount in region 'north' last 30 days")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.SQL)
	fmt.Println(t.Explanation)

	// The translation is a proposal: the guard, built from the same
	// schema, decides whether it may run.
	v, err := sqlguard.Check(ctx, schema.Policy(), t.SQL)
	fmt.Println(v.Tables, err)

	_, err = tr.Translate(ctx, schema, "how many salaries")
	fmt.Println(errors.Is(err, sqlgen.ErrNotUnderstood))
	// Output:
	// SELECT `product`, SUM(`amount`) AS `total_amount` FROM `sales` WHERE `region` = 'north' AND `sold_at` >= '2024-03-02' AND `sold_at` < '2024-04-01' GROUP BY `product` ORDER BY `total_amount` DESC, `product` LIMIT 3
	// the total of amount in sales for each product, where region is "north" and sold_at is from 2024-03-02 to 2024-03-31, the 3 largest
	// [sales] <nil>
	// true
}
