package sqlguard

// The function allow-lists: aggregates, window functions, arithmetic,
// string and date/time functions that read only their arguments. A function
// that reads files, the catalog, settings or the session, sleeps, or builds
// huge values (repeat, lpad with a large count) is absent on purpose.

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var commonFunctions = []string{
	// aggregates
	"count", "sum", "avg", "min", "max",
	"stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
	// window
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value",
	// arithmetic
	"abs", "ceil", "ceiling", "floor", "round", "sign", "sqrt", "exp", "ln",
	"log", "log10", "mod", "power", "pow",
	// string
	"lower", "upper", "length", "char_length", "character_length", "substr",
	"substring", "trim", "ltrim", "rtrim", "concat", "concat_ws",
	"left", "right", "reverse",
	// conditional
	"coalesce", "nullif",
}

var postgresFunctions = func() map[string]bool {
	return set(append([]string{
		"bool_and", "bool_or", "every", "string_agg", "percentile_cont",
		"percentile_disc", "mode", "corr", "covar_pop", "covar_samp",
		"trunc", "cbrt", "div", "width_bucket",
		"btrim", "initcap", "split_part", "starts_with", "strpos", "position", "replace",
		"to_char", "to_number", "to_date", "to_timestamp",
		"date_trunc", "date_part", "extract", "now", "age", "make_date",
		"make_timestamp", "date_bin", "justify_days", "justify_hours",
		"greatest", "least",
	}, commonFunctions...)...)
}()

// replace is absent: nested, each level multiplies the string's length,
// and MariaDB's replace takes time in the square of the length without
// ever looking at a KILL or max_statement_time (a query of eight levels ran
// on for minutes after both; PostgreSQL and SQLite stop it at their limit).
var mysqlFunctions = func() map[string]bool {
	return set(append([]string{
		"group_concat", "std", "bit_and", "bit_or", "bit_xor",
		"truncate", "greatest", "least", "if", "ifnull",
		"locate", "instr", "lcase", "ucase",
		"date", "year", "month", "day", "dayofmonth", "dayofweek", "dayofyear",
		"hour", "minute", "second", "week", "quarter", "weekday",
		"date_format", "date_add", "date_sub", "adddate", "subdate", "datediff",
		"timestampdiff", "timestampadd", "extract", "now", "curdate",
		"current_date", "current_timestamp", "str_to_date", "last_day",
		"unix_timestamp", "from_unixtime",
	}, commonFunctions...)...)
}()

// printf and format are absent: a huge width builds a huge string.
var sqliteFunctions = func() map[string]bool {
	return set(append([]string{
		"total", "group_concat", "string_agg", "ifnull", "iif", "instr",
		"trunc", "date", "time", "datetime", "julianday", "strftime",
		"unixepoch", "like", "glob", "replace",
	}, commonFunctions...)...)
}()

// postgresTypes are the types a PostgreSQL cast may name (as the parser
// spells them, after folding int to int4 and so on). Casts to reg* types
// look up the catalog and are absent.
var postgresTypes = set(
	"int2", "int4", "int8", "smallint", "integer", "int", "bigint",
	"numeric", "decimal", "float4", "float8", "real", "text", "varchar",
	"bpchar", "char", "date", "timestamp", "timestamptz", "time", "timetz",
	"interval", "bool", "boolean",
)

// postgresOperators are the operators an expression may use; a
// user-defined operator can call any function.
var postgresOperators = set(
	"+", "-", "*", "/", "%", "^", "=", "<>", "!=", "<", ">", "<=", ">=",
	"||", "~~", "!~~", "~~*", "!~~*", "~", "!~", "~*", "!~*",
	// the names A_Expr gives BETWEEN
	"BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC",
)
