package sqlguard_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/sqlguard"
)

func Example() {
	policy := sqlguard.Policy{
		Dialect: sqlguard.Postgres,
		Tables:  []sqlguard.Table{{Name: "sales"}},
	}
	g, err := sqlguard.New(policy)
	if err != nil {
		panic(err)
	}
	defer g.Close()

	v, err := g.Check(context.Background(), "SELECT region, sum(amount) FROM sales GROUP BY region")
	fmt.Println(v.Tables, err)

	_, err = g.Check(context.Background(), "SELECT pg_read_file('/etc/passwd')")
	var rejected *sqlguard.RejectedError
	fmt.Println(errors.As(err, &rejected), rejected.Reason)
	// Output:
	// [sales] <nil>
	// true function "pg_read_file" is not allowed
}
