package sqlgen

import (
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
)

func TestQuoting(t *testing.T) {
	t.Parallel()
	idents := []struct {
		d          sqlguard.Dialect
		name, want string
	}{
		{sqlguard.Postgres, `we"ird`, `"we""ird"`},
		{sqlguard.SQLite, `we"ird`, `"we""ird"`},
		{sqlguard.MySQL, "we`ird", "`we``ird`"},
		{sqlguard.MySQL, `we"ird`, "`we\"ird`"},
	}
	for _, tc := range idents {
		if got := quoteIdent(tc.d, tc.name); got != tc.want {
			t.Errorf("quoteIdent(%s, %q) = %s, want %s", tc.d, tc.name, got, tc.want)
		}
	}
	strs := []struct {
		d       sqlguard.Dialect
		s, want string
	}{
		{sqlguard.Postgres, `it's`, `'it''s'`},
		{sqlguard.Postgres, `a\b'`, `E'a\\b'''`},
		{sqlguard.SQLite, `a\b'`, `'a\b'''`},
		{sqlguard.MySQL, `a\b'`, `'a\\b'''`},
		{sqlguard.MySQL, `\'`, `'\\'''`},
	}
	for _, tc := range strs {
		if got := quoteString(tc.d, tc.s); got != tc.want {
			t.Errorf("quoteString(%s, %q) = %s, want %s", tc.d, tc.s, got, tc.want)
		}
	}
}
