package datasource

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/palisadehq/palisade/sealing"
)

// Kind is the engine of a data source. The values are the strings of
// sqlguard.Dialect.
type Kind string

const (
	Postgres Kind = "postgres"
	MySQL    Kind = "mysql" // MySQL and MariaDB
	SQLite   Kind = "sqlite"
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("datasource: invalid config")

// Config says how to reach one data source. The password stays a
// sealing.Secret until it is handed to a driver.
type Config struct {
	Kind     Kind
	Host     string
	Port     int // 0 takes the kind's default (5432, 3306)
	Database string
	User     string
	Password sealing.Secret
	// Params holds driver parameters from an allow-list only: for postgres
	// sslmode and application_name, for mysql tls. Anything else is an
	// error naming the key, so a tenant cannot point the driver at files
	// on the server (sslrootcert, allowAllFiles) or switch a wall off
	// (multiStatements).
	Params map[string]string
	// Org is the organization the source belongs to. A SQLite Path is
	// relative to its own directory under the executor's SQLite root
	// (<root>/<org>/), so that no organization can name another's files.
	Org string
	// Path is the SQLite file, relative to Org's directory under the
	// executor's SQLite root.
	Path string
	// Tables, for sqlite only, lists the tables a query may read; when set,
	// the executor's authorizer refuses every other table (SQLite has no
	// roles, so this is its stand-in for a read-only role's grants).
	Tables []string
}

// allowedParams lists, per kind, each allowed parameter and its allowed
// values (nil: any value without control characters, at most 64 bytes).
var allowedParams = map[Kind]map[string][]string{
	Postgres: {
		"sslmode":          {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"},
		"application_name": nil,
	},
	MySQL: {
		"tls": {"true", "false", "skip-verify", "preferred"},
	},
	SQLite: {},
}

func defaultPort(k Kind) int {
	switch k {
	case Postgres:
		return 5432
	case MySQL:
		return 3306
	}
	return 0
}

// port returns the configured port or the kind's default.
func (c Config) port() int {
	if c.Port == 0 {
		return defaultPort(c.Kind)
	}
	return c.Port
}

// Validate reports the first problem of the config, wrapping
// ErrInvalidConfig. Its messages never carry the password.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	allowed, ok := allowedParams[c.Kind]
	if !ok {
		return bad("kind %q is not one of postgres, mysql, sqlite", clip(string(c.Kind)))
	}
	for _, f := range []struct{ name, value string }{
		{"host", c.Host}, {"database", c.Database}, {"user", c.User}, {"path", c.Path},
	} {
		if strings.ContainsFunc(f.value, isControl) {
			return bad("%s holds a control character", f.name)
		}
		if len(f.value) > 1024 {
			return bad("%s is longer than 1024 bytes", f.name)
		}
	}
	if strings.ContainsFunc(c.Password.Reveal(), func(r rune) bool { return r == 0 }) {
		return bad("password holds a NUL byte")
	}
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		values, ok := allowed[k]
		if !ok {
			names := make([]string, 0, len(allowed))
			for n := range allowed {
				names = append(names, n)
			}
			slices.Sort(names)
			if len(names) == 0 {
				return bad("parameter %q is not allowed: %s sources take no parameters", clip(k), c.Kind)
			}
			return bad("parameter %q is not allowed for %s (allowed: %s)", clip(k), c.Kind, strings.Join(names, ", "))
		}
		v := c.Params[k]
		if values != nil && !slices.Contains(values, v) {
			return bad("parameter %q: value %q is not one of %s", k, clip(v), strings.Join(values, ", "))
		}
		if len(v) > 64 || strings.ContainsFunc(v, isControl) {
			return bad("parameter %q: value is longer than 64 bytes or holds a control character", k)
		}
	}

	if c.Kind == SQLite {
		switch {
		case c.Path == "":
			return bad("sqlite: path is empty")
		case c.Host != "" || c.Port != 0 || c.Database != "" || c.User != "" || !c.Password.IsZero():
			return bad("sqlite: host, port, database, user and password must be empty")
		}
		for _, t := range c.Tables {
			if t == "" || strings.ContainsFunc(t, isControl) {
				return bad("sqlite: table name %q is empty or holds a control character", clip(t))
			}
		}
		return nil
	}
	switch {
	case c.Path != "":
		return bad("%s: path is for sqlite sources only", c.Kind)
	case len(c.Tables) > 0:
		return bad("%s: tables are for sqlite sources only (use the role's grants)", c.Kind)
	case c.Host == "":
		return bad("%s: host is empty", c.Kind)
	case strings.HasPrefix(c.Host, "/") || strings.ContainsAny(c.Host, " /\\@?#,'\"="):
		return bad("%s: host %q is not a host name or IP address", c.Kind, clip(c.Host))
	case c.Port < 0 || c.Port > 65535:
		return bad("%s: port %d is out of range", c.Kind, c.Port)
	case c.Database == "":
		return bad("%s: database is empty", c.Kind)
	case c.User == "":
		return bad("%s: user is empty", c.Kind)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// key identifies the pool of a config: a hash over every field, the
// password included, so a changed password gets a new pool and no map key
// holds the password in clear.
func (c Config) key() string {
	h := sha256.New()
	write := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(string(c.Kind))
	write(c.Host)
	write(strconv.Itoa(c.port()))
	write(c.Database)
	write(c.User)
	write(c.Password.Reveal())
	write(c.Org)
	write(c.Path)
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		write(k)
		write(c.Params[k])
	}
	tables := slices.Clone(c.Tables)
	slices.Sort(tables)
	for _, t := range tables {
		write("table")
		write(t)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParseURL reads a connection URL into a Config:
//
//	postgres://user:password@host:5432/database?sslmode=disable
//	mysql://user:password@host:3306/database?tls=false
//	sqlite:relative/path.db
//
// Query parameters become Params; Validate still decides whether they are
// allowed. Errors never carry the password.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url's own errors quote the input, password included.
		return Config{}, fmt.Errorf("%w: not a URL", ErrInvalidConfig)
	}
	var c Config
	switch u.Scheme {
	case "postgres", "postgresql":
		c.Kind = Postgres
	case "mysql", "mariadb":
		c.Kind = MySQL
	case "sqlite":
		c.Kind = SQLite
		c.Path = u.Opaque
		if c.Path == "" {
			c.Path = strings.TrimPrefix(u.Path, "/")
		}
		return c, c.Validate()
	default:
		return Config{}, fmt.Errorf("%w: URL scheme %q is not postgres, mysql or sqlite", ErrInvalidConfig, clip(u.Scheme))
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil {
			return Config{}, fmt.Errorf("%w: port %q is not a number", ErrInvalidConfig, clip(p))
		}
	}
	c.Database = strings.TrimPrefix(u.Path, "/")
	if u.User != nil {
		c.User = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			c.Password = sealing.NewSecret(pw)
		}
	}
	for k, vs := range u.Query() {
		if c.Params == nil {
			c.Params = map[string]string{}
		}
		c.Params[k] = vs[len(vs)-1]
	}
	return c, c.Validate()
}
