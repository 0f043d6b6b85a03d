package sqlguard

import (
	"errors"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// newMySQLParsers pools TiDB parsers, which are costly to build and not
// safe for concurrent use.
func newMySQLParsers() *sync.Pool {
	return &sync.Pool{New: func() any { return parser.New() }}
}

// mysqlHiddenSQL are comment forms MySQL (or TiDB) may execute or obey.
// They are refused outright, even inside string literals, because a
// difference between TiDB's and the server's reading of them could hide
// SQL from the guard.
var mysqlHiddenSQL = []string{"/*!", "/*+", "/*T!", "/*t!", "/*M!", "/*m!"}

func checkMySQL(parsers *sync.Pool, policy map[string]Table, query string, normalize bool) (Verdict, error) {
	for _, marker := range mysqlHiddenSQL {
		if strings.Contains(query, marker) {
			return Verdict{}, reject("executable comments and optimizer hints (%s) are not allowed", marker)
		}
	}
	// The parser owns the statements it returns and reuses them on its next
	// Parse, so it goes back to the pool only when the check is done.
	p := parsers.Get().(*parser.Parser)
	stmts, reusable, err := parseMySQL(p, query)
	if reusable {
		defer parsers.Put(p)
	}
	if err != nil {
		return Verdict{}, reject("does not parse as MySQL: %s", shorten(err.Error()))
	}
	if len(stmts) != 1 {
		return Verdict{}, reject("expected exactly one statement, found %d", len(stmts))
	}
	switch stmts[0].(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
	default:
		return Verdict{}, reject("only SELECT is allowed, found %s", mysqlStmtName(stmts[0]))
	}
	st := &mysqlState{policy: policy, tables: tablesRead{}}
	stmts[0].Accept(&mysqlVisitor{state: st})
	if st.err != nil {
		return Verdict{}, st.err
	}
	if err := mysqlColumns(policy, st.tables, stmts[0]); err != nil {
		return Verdict{}, err
	}
	v := Verdict{Tables: st.tables.sorted()}
	if normalize {
		v.Normalized = restoreMySQL(stmts[0])
	}
	return v, nil
}

// parseMySQL parses query with p, turning a panic of the parser into an
// error: the literal driver TiDB ships for use outside TiDB panics on some
// decimals (the fuzzer found one with 82 digits). A parser that panicked
// must not be reused; ok says whether p may be.
func parseMySQL(p *parser.Parser, query string) (stmts []ast.StmtNode, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			stmts, ok, err = nil, false, errors.New("the parser failed on this input")
		}
	}()
	stmts, _, err = p.Parse(query, "", "")
	return stmts, true, err
}

func mysqlStmtName(n ast.StmtNode) string {
	name := strings.TrimPrefix(strings.TrimPrefix(typeName(n), "*ast."), "*")
	return strings.TrimSuffix(name, "Stmt")
}

type mysqlState struct {
	policy map[string]Table
	tables tablesRead
	err    error
}

// mysqlVisitor walks one query with the CTE names visible to it.
type mysqlVisitor struct {
	state *mysqlState
	ctes  []string
}

func (v *mysqlVisitor) fail(n ast.Node, err *RejectedError) (ast.Node, bool) {
	if v.state.err == nil {
		v.state.err = err
	}
	return n, true
}

func (v *mysqlVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if v.state.err != nil {
		return n, true
	}
	switch n := n.(type) {
	case *ast.SelectStmt:
		if n.SelectIntoOpt != nil {
			return v.fail(n, reject("SELECT INTO is not allowed"))
		}
		if n.LockInfo != nil && n.LockInfo.LockType != ast.SelectLockNone {
			return v.fail(n, reject("locking clauses (FOR UPDATE/SHARE) are not allowed"))
		}
		if len(n.TableHints) > 0 {
			return v.fail(n, reject("optimizer hints are not allowed"))
		}
		switch n.Kind {
		case ast.SelectStmtKindValues:
			return v.fail(n, reject("VALUES is not allowed"))
		case ast.SelectStmtKindTable:
			return v.fail(n, reject("TABLE statements are not allowed"))
		}
		if n.With != nil {
			with := n.With
			n.With = nil
			v.withScope(with, n)
			n.With = with
			return n, true
		}
	case *ast.SetOprStmt:
		if n.With != nil {
			with := n.With
			n.With = nil
			v.withScope(with, n)
			n.With = with
			return n, true
		}
	case *ast.TableSource:
		if n.Lateral {
			return v.fail(n, reject("LATERAL is not allowed"))
		}
	case *ast.TableName:
		return v.table(n)
	case *ast.FuncCallExpr:
		if n.Schema.O != "" {
			return v.fail(n, reject("schema-qualified function %q is not allowed", shorten(n.Schema.O+"."+n.FnName.O)))
		}
		if !mysqlFunctions[n.FnName.L] {
			return v.fail(n, reject("function %q is not allowed", shorten(n.FnName.O)))
		}
	case *ast.AggregateFuncExpr:
		if !mysqlFunctions[strings.ToLower(n.F)] {
			return v.fail(n, reject("aggregate %q is not allowed", shorten(n.F)))
		}
	case *ast.WindowFuncExpr:
		if !mysqlFunctions[strings.ToLower(n.Name)] {
			return v.fail(n, reject("window function %q is not allowed", shorten(n.Name)))
		}
	case *ast.VariableExpr:
		return v.fail(n, reject("variables (@x, @@x) are not allowed"))
	case *ast.SetOprSelectList, *ast.TableRefsClause, *ast.Join, *ast.OnCondition,
		*ast.FieldList, *ast.SelectField, *ast.ColumnNameExpr, *ast.ColumnName,
		*ast.BinaryOperationExpr, *ast.UnaryOperationExpr, *ast.BetweenExpr,
		*ast.CaseExpr, *ast.WhenClause, *ast.SubqueryExpr, *ast.CompareSubqueryExpr,
		*ast.ExistsSubqueryExpr, *ast.PatternInExpr, *ast.IsNullExpr, *ast.IsTruthExpr,
		*ast.PatternLikeOrIlikeExpr, *ast.PatternRegexpExpr, *ast.ParenthesesExpr,
		*ast.PositionExpr, *ast.RowExpr, *ast.FuncCastExpr, *ast.TrimDirectionExpr,
		*ast.TimeUnitExpr, *ast.GroupByClause, *ast.HavingClause, *ast.OrderByClause,
		*ast.ByItem, *ast.Limit, *ast.WindowSpec, *ast.PartitionByClause,
		*ast.FrameClause, *ast.FrameBound, *test_driver.ValueExpr:
	default:
		return v.fail(n, reject("%s is not allowed in a query", strings.TrimPrefix(typeName(n), "*ast.")))
	}
	return n, false
}

func (v *mysqlVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, v.state.err == nil }

// withScope checks the CTEs of with, each seeing only those before it,
// then body (already detached from with) seeing all of them.
func (v *mysqlVisitor) withScope(with *ast.WithClause, body ast.Node) {
	if with.IsRecursive {
		v.fail(body, reject("recursive CTEs are not allowed"))
		return
	}
	ctes := v.ctes
	for _, cte := range with.CTEs {
		if cte.IsRecursive {
			v.fail(body, reject("recursive CTEs are not allowed"))
			return
		}
		if cte.Query == nil {
			v.fail(body, reject("CTE %q has no query", shorten(cte.Name.O)))
			return
		}
		cte.Query.Accept(&mysqlVisitor{state: v.state, ctes: ctes})
		if v.state.err != nil {
			return
		}
		ctes = append(ctes[:len(ctes):len(ctes)], cte.Name.O)
	}
	body.Accept(&mysqlVisitor{state: v.state, ctes: ctes})
}

// table checks a table reference. Names match exactly: whether the server
// folds table names depends on lower_case_table_names, and an exact match
// is correct under either setting.
func (v *mysqlVisitor) table(n *ast.TableName) (ast.Node, bool) {
	t := n
	if t.Schema.O != "" {
		return v.fail(n, reject("schema-qualified table %q is not allowed", shorten(t.Schema.O+"."+t.Name.O)))
	}
	if len(t.IndexHints) > 0 || len(t.PartitionNames) > 0 || t.TableSample != nil || t.AsOf != nil {
		return v.fail(n, reject("index hints, PARTITION, TABLESAMPLE and AS OF are not allowed"))
	}
	for i := len(v.ctes) - 1; i >= 0; i-- {
		if v.ctes[i] == t.Name.O {
			return t, true
		}
	}
	if _, ok := v.state.policy[t.Name.O]; !ok {
		return v.fail(n, reject("table %q is not allowed", shorten(t.Name.O)))
	}
	v.state.tables[t.Name.O] = struct{}{}
	return t, true
}

// restoreMySQL prints n back, or returns "" if it cannot.
func restoreMySQL(n ast.Node) (text string) {
	defer func() {
		if recover() != nil {
			text = ""
		}
	}()
	var b strings.Builder
	if n.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &b)) != nil {
		return ""
	}
	return b.String()
}
