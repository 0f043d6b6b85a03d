package datasources

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Postgres, MySQL, SQLite:
		return k, nil
	}
	return "", fmt.Errorf("%w: kind must be postgres, mysql or sqlite", domain.ErrInvalid)
}

// DefaultPort returns the port a kind listens on unless told otherwise.
func DefaultPort(k Kind) int {
	switch k {
	case Postgres:
		return 5432
	case MySQL:
		return 3306
	}
	return 0
}

// NormalizeConnection checks that conn fits kind and fills the default
// port. The kind-specific driver parameters are checked where the source
// connects; here only their shape is.
func NormalizeConnection(kind Kind, conn Connection) (Connection, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return Connection{}, err
	}
	if err := checkParams(conn.Params); err != nil {
		return Connection{}, err
	}
	if kind == SQLite {
		if conn.Host != "" || conn.Port != 0 || conn.Database != "" || conn.User != "" || conn.SealedPassword != "" {
			return Connection{}, fmt.Errorf("%w: a sqlite connection has only a path", domain.ErrInvalid)
		}
		if err := checkPath(conn.Path); err != nil {
			return Connection{}, err
		}
		return conn, nil
	}
	if conn.Path != "" {
		return Connection{}, fmt.Errorf("%w: connection.path is for sqlite sources only", domain.ErrInvalid)
	}
	if err := checkHost(conn.Host); err != nil {
		return Connection{}, err
	}
	if conn.Port == 0 {
		conn.Port = DefaultPort(kind)
	}
	if conn.Port < 1 || conn.Port > 65535 {
		return Connection{}, fmt.Errorf("%w: connection.port must be 1 to 65535", domain.ErrInvalid)
	}
	if err := checkWord("connection.database", conn.Database, true, ""); err != nil {
		return Connection{}, err
	}
	if err := checkWord("connection.user", conn.User, true, "@"); err != nil {
		return Connection{}, err
	}
	return conn, nil
}

// checkHost accepts a DNS name or an IP address literal (IPv6 without
// brackets). Where it may connect is netguard's to decide, at connection.
func checkHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: connection.host must be 1 to 253 characters", domain.ErrInvalid)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '_' {
			continue
		}
		return fmt.Errorf("%w: connection.host must be a host name or an IP address", domain.ErrInvalid)
	}
	return nil
}

// wordSpecials are the characters other than ASCII letters and digits a
// database name, user name or parameter value may hold. None of them
// separates the parts of a connection string (no space, quote, backslash,
// "/", "?", "&", "=", ";", "#", "%", "@" or ":"), so a value can never
// smuggle in another parameter, whatever way the driver is configured.
const wordSpecials = "_.-$+"

// checkWord validates a database name, user name or parameter value:
// 1–MaxIdentifierLen bytes of ASCII letters, digits, wordSpecials and the
// characters of extra.
func checkWord(field, v string, required bool, extra string) error {
	if v == "" {
		if required {
			return fmt.Errorf("%w: %s is required", domain.ErrInvalid, field)
		}
		return nil
	}
	if len(v) > MaxIdentifierLen {
		return fmt.Errorf("%w: %s is longer than %d characters", domain.ErrInvalid, field, MaxIdentifierLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte(wordSpecials, c) >= 0 || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return fmt.Errorf("%w: %s may hold only ASCII letters, digits and %s%s", domain.ErrInvalid, field, wordSpecials, extra)
	}
	return nil
}

func checkParams(params map[string]string) error {
	if len(params) > MaxParams {
		return fmt.Errorf("%w: connection.params holds at most %d entries", domain.ErrInvalid, MaxParams)
	}
	for k, v := range params {
		if k == "" || len(k) > 40 {
			return fmt.Errorf("%w: connection.params keys must be 1 to 40 characters", domain.ErrInvalid)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return fmt.Errorf("%w: connection.params key %.40q may hold only letters, digits and _", domain.ErrInvalid, k)
			}
		}
		// Values such as "verify-full", "utf8mb4_unicode_ci", "10s" or
		// "Europe/Paris"; a value may be empty.
		if err := checkWord("connection.params["+k+"]", v, false, "/,:"); err != nil {
			return err
		}
	}
	return nil
}

// checkPath refuses what can never be a path under the SQLite root: an
// absolute path, a ".." segment, a control character, and the characters a
// SQLite URI file name would decode or cut ("%", "?", "#"). Symbolic links
// are netguard's to refuse, where the file is opened.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: connection.path is required for a sqlite source", domain.ErrInvalid)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: connection.path is longer than %d characters", domain.ErrInvalid, MaxPathLen)
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") || strings.Contains(p, ":"):
		return fmt.Errorf("%w: connection.path must be relative to the SQLite root", domain.ErrInvalid)
	case strings.ContainsAny(p, "\\?#%"):
		return fmt.Errorf("%w: connection.path holds a character a file name may not", domain.ErrInvalid)
	case strings.ContainsFunc(p, unicode.IsControl):
		return fmt.Errorf("%w: connection.path holds a character a file name may not", domain.ErrInvalid)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fmt.Errorf("%w: connection.path must stay under the SQLite root", domain.ErrInvalid)
		}
	}
	return domain.CheckText("connection.path", p, MaxPathLen)
}

// CheckIdentifier validates a table or column name of an allow-list: a
// letter or underscore, then letters, digits, _ or $; a table may be
// qualified by its schema ("reporting.sales").
func CheckIdentifier(field, name string, qualified bool) error {
	if name == "" || len(name) > MaxIdentifierLen {
		return fmt.Errorf("%w: %s must be 1 to %d characters", domain.ErrInvalid, field, MaxIdentifierLen)
	}
	parts := []string{name}
	if qualified {
		parts = strings.Split(name, ".")
		if len(parts) > 2 {
			return fmt.Errorf("%w: %s %.80q may be qualified by one schema only", domain.ErrInvalid, field, name)
		}
	}
	for _, part := range parts {
		if part == "" {
			return fmt.Errorf("%w: %s %.80q has an empty part", domain.ErrInvalid, field, name)
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
			if letter || i > 0 && (c >= '0' && c <= '9' || c == '$') {
				continue
			}
			return fmt.Errorf("%w: %s %.80q must be letters, digits, _ or $, starting with a letter or _", domain.ErrInvalid, field, name)
		}
	}
	return nil
}

// NormalizeAllowedTables validates an allow-list and returns it sorted by
// name, each table once, its columns sorted and unique.
func NormalizeAllowedTables(tables []AllowedTable) ([]AllowedTable, error) {
	if len(tables) == 0 {
		return nil, fmt.Errorf("%w: allowed_tables must list at least one table", domain.ErrInvalid)
	}
	if len(tables) > MaxAllowedTables {
		return nil, fmt.Errorf("%w: allowed_tables lists at most %d tables", domain.ErrInvalid, MaxAllowedTables)
	}
	out := make([]AllowedTable, 0, len(tables))
	seen := map[string]bool{}
	for _, t := range tables {
		if err := CheckIdentifier("allowed table", t.Name, true); err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%w: allowed table %q is listed twice", domain.ErrInvalid, t.Name)
		}
		seen[t.Name] = true
		if len(t.Columns) > MaxColumns {
			return nil, fmt.Errorf("%w: allowed table %q lists more than %d columns", domain.ErrInvalid, t.Name, MaxColumns)
		}
		var cols []string
		for _, c := range t.Columns {
			if err := CheckIdentifier("column of "+t.Name, c, false); err != nil {
				return nil, err
			}
			cols = append(cols, c)
		}
		slices.Sort(cols)
		out = append(out, AllowedTable{Name: t.Name, Columns: slices.Compact(cols)})
	}
	slices.SortFunc(out, func(a, b AllowedTable) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// NormalizeGrants validates grants — subjects "user:SUB", "role:ROLE" with
// a known role or "service:ID", permissions datasources:query — and returns
// them sorted by subject, one entry per subject.
func NormalizeGrants(grants []Grant) ([]Grant, error) {
	if len(grants) > MaxGrants {
		return nil, fmt.Errorf("%w: at most %d grants", domain.ErrInvalid, MaxGrants)
	}
	bySubject := map[string]bool{}
	out := make([]Grant, 0, len(grants))
	for _, g := range grants {
		kind, value, ok := strings.Cut(g.Subject, ":")
		switch {
		case ok && (kind == "user" || kind == "service"):
			if err := domain.CheckSubject("grant subject", value); err != nil {
				return nil, err
			}
		case ok && kind == "role":
			if _, known := access.ParseRole(value); !known {
				return nil, fmt.Errorf("%w: grant names unknown role %.40q", domain.ErrInvalid, value)
			}
		default:
			return nil, fmt.Errorf("%w: grant subject %.80q must be user:SUB, role:ROLE or service:ID", domain.ErrInvalid, g.Subject)
		}
		if len(g.Permissions) == 0 {
			return nil, fmt.Errorf("%w: grant for %.80q lists no permission", domain.ErrInvalid, g.Subject)
		}
		for _, p := range g.Permissions {
			if p != access.DatasourcesQuery.String() {
				return nil, fmt.Errorf("%w: a data source grant gives datasources:query, not %.40q", domain.ErrInvalid, p)
			}
		}
		if bySubject[g.Subject] {
			continue
		}
		bySubject[g.Subject] = true
		out = append(out, Grant{Subject: g.Subject, Permissions: []string{access.DatasourcesQuery.String()}})
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.Subject, b.Subject) })
	return out, nil
}
