package datasource

import (
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Column is one column of a table or a result.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Table is one table or view of a schema snapshot.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// Schema is what the connecting user can read: tables sorted by name,
// columns in table order.
type Schema struct {
	Tables []Table `json:"tables"`
}

// Result is one query's rows, ready for JSON.
//
// Values are nil, bool, int64, float64 or string. Exact numbers that do not
// fit those types (NUMERIC, DECIMAL, unsigned 64-bit integers) are decimal
// strings, so no digit is lost; NaN and infinities are the strings "NaN",
// "Infinity" and "-Infinity". A DATE is "2006-01-02"; other times are RFC
// 3339 with fractional seconds as needed. Binary values are base64
// strings (standard alphabet, padded); anything else (intervals, arrays,
// JSON, UUIDs) is its text form.
type Result struct {
	Columns   []Column      `json:"columns"`
	Rows      [][]any       `json:"rows"`
	RowCount  int           `json:"row_count"`
	Bytes     int64         `json:"bytes"`     // len of Rows as JSON
	Truncated bool          `json:"truncated"` // MaxRows or MaxBytes stopped the fetch
	SHA256    string        `json:"sha256"`    // hex, over the canonical JSON of {columns, rows}
	Duration  time.Duration `json:"duration"`
}

// CanonicalJSON is the text Result.SHA256 is computed over: Go's
// encoding/json of {"columns": Columns, "rows": Rows}.
func CanonicalJSON(columns []Column, rows [][]any) ([]byte, error) {
	if rows == nil {
		rows = [][]any{}
	}
	if columns == nil {
		columns = []Column{}
	}
	return json.Marshal(struct {
		Columns []Column `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}{columns, rows})
}

// collector keeps rows while the caps allow, hashing the canonical JSON as
// it goes so the result is never encoded twice.
type collector struct {
	maxRows  int
	maxBytes int64

	columns   []Column
	rows      [][]any
	bytes     int64 // of "[row,row]"
	truncated bool
	hash      hash.Hash
}

func newCollector(l Limits) *collector {
	return &collector{maxRows: l.MaxRows, maxBytes: l.MaxBytes, rows: [][]any{}, bytes: 2}
}

func (c *collector) setColumns(cols []Column) error {
	c.columns = cols
	head, err := json.Marshal(cols)
	if err != nil {
		return err
	}
	c.hash = sha256.New()
	c.hash.Write([]byte(`{"columns":`))
	c.hash.Write(head)
	c.hash.Write([]byte(`,"rows":[`))
	return nil
}

// add keeps one converted row; it returns false when a cap stops the
// fetch, and the row is not kept.
func (c *collector) add(row []any) (bool, error) {
	if len(c.rows) >= c.maxRows {
		c.truncated = true
		return false, nil
	}
	b, err := json.Marshal(row)
	if err != nil {
		return false, fmt.Errorf("encoding row %d: %w", len(c.rows)+1, err)
	}
	size := int64(len(b))
	if len(c.rows) > 0 {
		size++ // the comma
	}
	if c.bytes+size > c.maxBytes {
		c.truncated = true
		return false, nil
	}
	if len(c.rows) > 0 {
		c.hash.Write([]byte{','})
	}
	c.hash.Write(b)
	c.bytes += size
	c.rows = append(c.rows, row)
	return true, nil
}

func (c *collector) result(d time.Duration) Result {
	if c.hash == nil {
		c.setColumns([]Column{})
	}
	c.hash.Write([]byte(`]}`))
	return Result{
		Columns:   c.columns,
		Rows:      c.rows,
		RowCount:  len(c.rows),
		Bytes:     c.bytes,
		Truncated: c.truncated,
		SHA256:    hex.EncodeToString(c.hash.Sum(nil)),
		Duration:  d,
	}
}

// jsonValue turns a driver's value into one of the JSON-ready types that
// Result documents. dbType is the column's database type name, lower case.
func jsonValue(v any, dbType string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		return x
	case int64:
		return x
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return strconv.FormatUint(x, 10)
		}
		return int64(x)
	case float64:
		return jsonFloat(x)
	case float32:
		return jsonFloat(float64(x))
	case string:
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		if dbType == "date" {
			return x.Format(time.DateOnly)
		}
		return x.Format(time.RFC3339Nano)
	case [16]byte: // PostgreSQL uuid
		h := hex.EncodeToString(x[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case driver.Valuer: // pgtype.Numeric, Interval, …: their text form
		inner, err := x.Value()
		if err != nil {
			return fmt.Sprint(v)
		}
		if _, again := inner.(driver.Valuer); again {
			return fmt.Sprint(inner)
		}
		return jsonValue(inner, dbType)
	case fmt.Stringer:
		return x.String()
	}
	// Arrays, JSON documents: their JSON text.
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// mysqlValue converts what go-sql-driver/mysql returns (bytes for most
// types on the text protocol) by the column's type.
func mysqlValue(v any, dbType string) any {
	b, ok := v.([]byte)
	if !ok {
		return jsonValue(v, dbType)
	}
	s := string(b)
	switch dbType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year",
		"unsigned tinyint", "unsigned smallint", "unsigned mediumint", "unsigned int", "unsigned bigint":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		return s
	case "float", "double", "real":
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return jsonFloat(f)
		}
		return s
	case "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary", "bit", "geometry":
		return base64.StdEncoding.EncodeToString(b)
	}
	return s // decimal, text types, json, enum, set, and times not parsed
}

// add appends a column to the named table, which is the last one or new:
// schema queries return columns grouped by table.
func (s *Schema) add(table string, col Column) {
	if n := len(s.Tables); n > 0 && s.Tables[n-1].Name == table {
		s.Tables[n-1].Columns = append(s.Tables[n-1].Columns, col)
		return
	}
	s.Tables = append(s.Tables, Table{Name: table, Columns: []Column{col}})
}

// sort orders the tables by name, keeping each table's column order.
func (s *Schema) sort() {
	if s.Tables == nil {
		s.Tables = []Table{}
	}
	slices.SortStableFunc(s.Tables, func(a, b Table) int { return strings.Compare(a.Name, b.Name) })
}

// byteCapped reports whether the byte cap, not the row cap, stopped the
// fetch, so rows may still be coming.
func (c *collector) byteCapped() bool {
	return c.truncated && len(c.rows) < c.maxRows
}

// collectRows reads the columns and rows of a database/sql result into c,
// converting each value with value (given the column's lower-case database
// type), and stops as soon as c is full; the caller's rows.Close discards
// the rest (at most one row past MaxRows, thanks to the outer LIMIT).
func collectRows(rows *sql.Rows, c *collector, value func(v any, dbType string) any) error {
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	cols := make([]Column, len(types))
	for i, t := range types {
		cols[i] = Column{Name: t.Name(), Type: strings.ToLower(t.DatabaseTypeName())}
	}
	if err := c.setColumns(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = value(v, cols[i].Type)
		}
		more, err := c.add(row)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return rows.Err()
}
