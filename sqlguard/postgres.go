package sqlguard

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// postgresNodes are the parse-tree messages a query may contain. Anything
// else (a data-modifying statement, a function in FROM, XML, a parameter of
// a utility statement…) is rejected by its message name.
var postgresNodes = set(
	"ParseResult", "RawStmt", "Node", "List", "SelectStmt", "ResTarget",
	"ColumnRef", "String", "Integer", "Float", "Boolean", "A_Const",
	"A_Expr", "BoolExpr", "FuncCall", "RangeVar", "JoinExpr", "SortBy",
	"WithClause", "CommonTableExpr", "Alias", "TypeCast", "TypeName",
	"CaseExpr", "CaseWhen", "NullTest", "BooleanTest", "SubLink",
	"WindowDef", "A_Star", "CoalesceExpr", "MinMaxExpr", "RangeSubselect",
	"GroupingSet", "SQLValueFunction", "RowExpr",
)

// postgresNodeNames turn common statement kinds into readable reasons.
var postgresNodeNames = map[string]string{
	"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE",
	"MergeStmt": "MERGE", "CopyStmt": "COPY", "VariableSetStmt": "SET",
	"DoStmt": "DO", "CallStmt": "CALL", "ExplainStmt": "EXPLAIN",
	"PrepareStmt": "PREPARE", "ExecuteStmt": "EXECUTE", "ListenStmt": "LISTEN",
	"NotifyStmt": "NOTIFY", "RangeFunction": "a function in FROM",
	"RangeTableSample": "TABLESAMPLE", "RangeTableFunc": "XMLTABLE",
	"JsonTable": "JSON_TABLE", "CreateTableAsStmt": "CREATE TABLE AS",
	"TransactionStmt": "a transaction statement", "LockStmt": "LOCK",
	"VariableShowStmt": "SHOW", "LoadStmt": "LOAD",
	"ParamRef": "a bind parameter", // a generated query has nothing to bind
}

type pgWalker struct {
	tables tablesRead
	policy map[string]Table
}

func checkPostgres(policy map[string]Table, query string, normalize bool) (Verdict, error) {
	tree, err := pg.Parse(query)
	if err != nil {
		return Verdict{}, reject("does not parse as PostgreSQL: %s", shorten(err.Error()))
	}
	if n := len(tree.Stmts); n != 1 {
		return Verdict{}, reject("expected exactly one statement, found %d", n)
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return Verdict{}, reject("only SELECT is allowed, found %s", pgNodeName(tree.Stmts[0].GetStmt()))
	}
	w := pgWalker{tables: tablesRead{}, policy: policy}
	if err := w.selectStmt(sel, nil); err != nil {
		return Verdict{}, err
	}
	if err := pgColumns(policy, w.tables, sel); err != nil {
		return Verdict{}, err
	}
	if err := pgAttributes(policy, sel); err != nil {
		return Verdict{}, err
	}
	v := Verdict{Tables: w.tables.sorted()}
	if normalize {
		if text, err := pg.Deparse(tree); err == nil {
			v.Normalized = text
		}
	}
	return v, nil
}

// pgNodeName names the statement inside a Node for a reason.
func pgNodeName(n *pg.Node) string {
	if n == nil || n.Node == nil {
		return "nothing"
	}
	m := n.ProtoReflect()
	which := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if which == nil {
		return "nothing"
	}
	name := string(which.Message().Name())
	if readable, ok := postgresNodeNames[name]; ok {
		return readable
	}
	return name
}

// selectStmt checks a SELECT with ctes, the CTE names visible to it from
// enclosing queries.
func (w *pgWalker) selectStmt(s *pg.SelectStmt, ctes []string) error {
	if s.IntoClause != nil {
		return reject("SELECT INTO is not allowed")
	}
	if len(s.LockingClause) > 0 {
		return reject("locking clauses (FOR UPDATE/SHARE) are not allowed")
	}
	if len(s.ValuesLists) > 0 {
		return reject("VALUES is not allowed")
	}
	if wc := s.WithClause; wc != nil {
		if wc.Recursive {
			return reject("recursive CTEs are not allowed")
		}
		// A non-recursive CTE sees only the CTEs before it.
		for _, n := range wc.Ctes {
			cte := n.GetCommonTableExpr()
			if cte == nil {
				return reject("unexpected node in WITH")
			}
			body := cte.Ctequery.GetSelectStmt()
			if body == nil {
				return reject("CTE %q is not a SELECT (%s)", shorten(cte.Ctename), pgNodeName(cte.Ctequery))
			}
			if cte.SearchClause != nil || cte.CycleClause != nil {
				return reject("SEARCH/CYCLE clauses are not allowed")
			}
			if err := w.selectStmt(body, ctes); err != nil {
				return err
			}
			ctes = append(ctes[:len(ctes):len(ctes)], cte.Ctename)
		}
	}
	return w.fields(s.ProtoReflect(), ctes, "WithClause")
}

// fields walks the fields of m except skip.
func (w *pgWalker) fields(m protoreflect.Message, ctes []string, skip string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if string(fd.Name()) == skip || fd.Message() == nil && !fd.IsList() {
			return true
		}
		if fd.IsList() {
			if fd.Message() == nil {
				return true
			}
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = w.message(l.Get(i).Message(), ctes)
			}
			return err == nil
		}
		err = w.message(v.Message(), ctes)
		return err == nil
	})
	return err
}

// message checks one parse-tree message and what it contains.
func (w *pgWalker) message(m protoreflect.Message, ctes []string) error {
	name := string(m.Descriptor().Name())
	if !postgresNodes[name] {
		if readable, ok := postgresNodeNames[name]; ok {
			return reject("%s is not allowed", readable)
		}
		return reject("%s is not allowed in a query", name)
	}
	switch n := m.Interface().(type) {
	case *pg.String, *pg.Integer, *pg.Float, *pg.Boolean, *pg.A_Const, *pg.A_Star:
		// Leaves: a constant or a name holds nothing to check, and not
		// walking them saves a third of a check's time.
		return nil
	case *pg.SelectStmt:
		return w.selectStmt(n, ctes)
	case *pg.RangeVar:
		return w.rangeVar(n, ctes)
	case *pg.RangeSubselect:
		if n.Lateral {
			return reject("LATERAL is not allowed")
		}
	case *pg.FuncCall:
		if err := w.funcCall(n); err != nil {
			return err
		}
	case *pg.SQLValueFunction:
		switch n.Op {
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_DATE, pg.SQLValueFunctionOp_SVFOP_CURRENT_TIME,
			pg.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N, pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP,
			pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N, pg.SQLValueFunctionOp_SVFOP_LOCALTIME,
			pg.SQLValueFunctionOp_SVFOP_LOCALTIME_N, pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP,
			pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
		default:
			return reject("session functions (current_user and the like) are not allowed")
		}
		return nil
	case *pg.TypeName:
		if err := pgTypeName(n); err != nil {
			return err
		}
	case *pg.A_Expr:
		if err := pgOperator(n.Name); err != nil {
			return err
		}
	case *pg.SubLink: // x op ANY (SELECT …)
		if err := pgOperator(n.OperName); err != nil {
			return err
		}
	case *pg.SortBy: // ORDER BY x USING op
		if err := pgOperator(n.UseOp); err != nil {
			return err
		}
	case *pg.ColumnRef:
		if len(n.Fields) > 2 {
			return reject("schema-qualified column references are not allowed")
		}
		return nil // its fields are names and *

	}
	return w.fields(m, ctes, "")
}

func (w *pgWalker) rangeVar(r *pg.RangeVar, ctes []string) error {
	if r.Catalogname != "" || r.Schemaname != "" {
		return reject("schema-qualified table %q is not allowed", shorten(r.Schemaname+"."+r.Relname))
	}
	for i := len(ctes) - 1; i >= 0; i-- {
		if ctes[i] == r.Relname {
			return w.fields(r.ProtoReflect(), nil, "")
		}
	}
	if _, ok := w.policy[r.Relname]; !ok {
		return reject("table %q is not allowed", shorten(r.Relname))
	}
	w.tables[r.Relname] = struct{}{}
	return w.fields(r.ProtoReflect(), nil, "")
}

func (w *pgWalker) funcCall(f *pg.FuncCall) error {
	names := pgStrings(f.Funcname)
	if len(names) == 0 {
		return reject("function without a name")
	}
	fn := names[len(names)-1]
	// SQL-syntax forms (EXTRACT(… FROM …), SUBSTRING(… FROM …)) parse as
	// pg_catalog.name; any other qualified name may reach a user function.
	if len(names) > 1 && !(len(names) == 2 && names[0] == "pg_catalog" && f.Funcformat == pg.CoercionForm_COERCE_SQL_SYNTAX) {
		return reject("schema-qualified function %q is not allowed", shorten(strings.Join(names, ".")))
	}
	if !postgresFunctions[fn] {
		return reject("function %q is not allowed", shorten(fn))
	}
	return nil
}

func pgTypeName(t *pg.TypeName) error {
	names := pgStrings(t.Names)
	if len(names) == 0 {
		return reject("type without a name")
	}
	if len(names) > 2 || len(names) == 2 && names[0] != "pg_catalog" {
		return reject("schema-qualified type %q is not allowed", shorten(strings.Join(names, ".")))
	}
	if !postgresTypes[names[len(names)-1]] {
		return reject("cast to type %q is not allowed", shorten(names[len(names)-1]))
	}
	// The server accepts only constants here; so does the guard.
	for _, mod := range t.Typmods {
		if mod.GetAConst() == nil {
			return reject("type modifiers must be constants")
		}
	}
	return nil
}

func pgOperator(name []*pg.Node) error {
	names := pgStrings(name)
	if len(names) == 0 {
		return nil // IN, BETWEEN and the like carry their operator implicitly
	}
	if len(names) > 1 {
		return reject("schema-qualified operator %q is not allowed", shorten(strings.Join(names, ".")))
	}
	if !postgresOperators[names[0]] {
		return reject("operator %q is not allowed", shorten(names[0]))
	}
	return nil
}

func pgStrings(nodes []*pg.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}
