package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain/datasources"
)

// FuzzDataSourceTables decodes arbitrary bodies of POST and PATCH
// /v1/data-sources and takes their allowed_tables through the domain's
// normalization, as the create and update commands do. Nothing panics;
// each decoded entry is what a reading written apart from
// AllowedTableRequest finds in the body (a string is a bare name, an
// object has only name and columns); and an allow-list the domain accepts
// names only tables and columns CheckIdentifier accepts, every table
// decoded.
func FuzzDataSourceTables(f *testing.F) {
	for _, seed := range []string{
		`{"name":"s","kind":"postgres","connection":{"host":"db","port":5432},"allowed_tables":["sales"]}`,
		`{"allowed_tables":["sales",{"name":"customers","columns":["id","country"]}]}`,
		`{"allowed_tables":[{"name":"reporting.sales"}]}`,
		`{"allowed_tables":[{"NAME":"sales","Columns":["a"]}]}`,
		`{"allowed_tables":[{"name":"sales","extra":1}]}`,
		`{"allowed_tables":[{"name":"sales","columns":null}]}`,
		`{"allowed_tables":[null,1,true,[]]}`,
		`{"allowed_tables":["sales; DROP TABLE x","a.b.c","1abc","","pg_catalog.pg_authid"]}`,
		`{"allowed_tables":["sales","sales"]}`,
		`{"allowed_tables":[{"name":"sales","columns":["a","a","b$1"]}]}`,
		`{"allowed_tables":["s\u0000"]}`,
		`{"allowed_tables":["ſales","\u212aey"]}`,
		`{"allowed_tables":[ "sales" , {"columns":["x"]} ]}`,
		`{"allowed_tables":{}}`,
		`{"allowed_tables":[]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var create CreateDataSourceRequest
		if err := DecodeStrict(bytes.NewReader(body), &create); err == nil {
			checkDecodedTables(t, body, create.AllowedTables)
		}
		var update UpdateDataSourceRequest
		if err := DecodeStrict(bytes.NewReader(body), &update); err == nil && update.AllowedTables != nil {
			checkDecodedTables(t, body, *update.AllowedTables)
		}
	})
}

func checkDecodedTables(t *testing.T, body []byte, decoded []AllowedTableRequest) {
	t.Helper()
	want, ok := referenceTables(body)
	if !ok {
		t.Fatalf("accepted %q, whose allowed_tables the reference reading refuses", body)
	}
	if len(want) != len(decoded) {
		t.Fatalf("%q: decoded %d tables, the reference reads %d", body, len(decoded), len(want))
	}
	for i := range want {
		if want[i].Name != decoded[i].Name || !slices.Equal(want[i].Columns, decoded[i].Columns) {
			t.Fatalf("%q: table %d decoded as %+v, the reference reads %+v", body, i, decoded[i], want[i])
		}
	}
	normalized, err := datasources.NormalizeAllowedTables(allowedTables(decoded))
	if err != nil {
		return
	}
	if len(normalized) != len(decoded) {
		t.Fatalf("%q: %d tables decoded, %d accepted", body, len(decoded), len(normalized))
	}
	for _, table := range normalized {
		if err := datasources.CheckIdentifier("table", table.Name, true); err != nil {
			t.Fatalf("%q: accepted table %q: %v", body, table.Name, err)
		}
		if !slices.ContainsFunc(decoded, func(d AllowedTableRequest) bool { return d.Name == table.Name }) {
			t.Fatalf("%q: accepted table %q was not in the body", body, table.Name)
		}
		for _, c := range table.Columns {
			if err := datasources.CheckIdentifier("column", c, false); err != nil {
				t.Fatalf("%q: accepted column %q of %q: %v", body, c, table.Name, err)
			}
		}
	}
}

// referenceTables reads allowed_tables from body with encoding/json's
// generic values: a string is a name; an object may hold name (a string)
// and columns (strings or null), matched without regard to case as
// encoding/json matches fields; null is an empty object. ok is false for
// anything else.
func referenceTables(body []byte) (tables []datasources.AllowedTable, ok bool) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil, false
	}
	var raw json.RawMessage
	for k, v := range doc {
		if strings.EqualFold(k, "allowed_tables") {
			raw = v
		}
	}
	var entries []any
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	if json.Unmarshal(raw, &entries) != nil {
		return nil, false
	}
	for _, e := range entries {
		switch e := e.(type) {
		case string:
			tables = append(tables, datasources.AllowedTable{Name: e})
		case nil:
			tables = append(tables, datasources.AllowedTable{})
		case map[string]any:
			var table datasources.AllowedTable
			for k, v := range e {
				switch {
				case strings.EqualFold(k, "name"):
					name, isString := v.(string)
					if !isString && v != nil {
						return nil, false
					}
					table.Name = name
				case strings.EqualFold(k, "columns"):
					if v == nil {
						table.Columns = nil
						continue
					}
					cols, isList := v.([]any)
					if !isList {
						return nil, false
					}
					table.Columns = []string{}
					for _, c := range cols {
						s, isString := c.(string)
						if !isString && c != nil {
							return nil, false
						}
						table.Columns = append(table.Columns, s)
					}
				default:
					return nil, false
				}
			}
			tables = append(tables, table)
		default:
			return nil, false
		}
	}
	return tables, true
}
