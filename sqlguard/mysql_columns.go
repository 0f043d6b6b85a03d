package sqlguard

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// mysqlColumns applies the column rule (columnRule) to a MySQL query the
// visitor has accepted. It does nothing when the query reads no restricted
// table. Column names compare without case, as MySQL compares them;
// qualifiers too, which can only merge more meanings into one check.
func mysqlColumns(policy map[string]Table, read tablesRead, stmt ast.StmtNode) error {
	r := newColumnRule(policy, read, strings.ToLower)
	if r == nil {
		return nil
	}
	c := &mysqlColumnCollector{rule: r, ctes: map[string]bool{}, exempt: map[*ast.ColumnName]bool{}}
	stmt.Accept(c)
	if c.err != nil {
		return c.err
	}
	for _, t := range c.tables {
		refname := t.AsName.O
		if refname == "" {
			refname = t.name.Name.O
		}
		r.addTable(policy, refname, t.name.Name.O, c.ctes[t.name.Name.L])
	}
	check := &mysqlColumnChecker{rule: r, exempt: c.exempt}
	stmt.Accept(check)
	if check.err != nil {
		return check.err
	}
	return nil
}

type mysqlTableRef struct {
	AsName ast.CIStr
	name   *ast.TableName
}

// mysqlColumnCollector gathers what the query's names may mean.
type mysqlColumnCollector struct {
	rule   *columnRule
	tables []mysqlTableRef
	ctes   map[string]bool
	exempt map[*ast.ColumnName]bool
	err    *RejectedError
}

func (c *mysqlColumnCollector) Enter(n ast.Node) (ast.Node, bool) {
	if c.err != nil {
		return n, true
	}
	switch n := n.(type) {
	case *ast.TableSource:
		switch src := n.Source.(type) {
		case *ast.TableName:
			c.tables = append(c.tables, mysqlTableRef{AsName: n.AsName, name: src})
		case *ast.SelectStmt, *ast.SetOprStmt:
			c.rule.addDerived(n.AsName.O)
		}
	case *ast.CommonTableExpression:
		c.ctes[n.Name.L] = true
		c.rule.addDerived(n.Name.O)
		for _, col := range n.ColNameList {
			c.rule.addOutput(col.O)
		}
	case *ast.SelectField:
		switch {
		case n.WildCard != nil:
			c.err = c.rule.star()
		case n.AsName.O != "":
			c.rule.addOutput(n.AsName.O)
		default:
			if col, ok := n.Expr.(*ast.ColumnNameExpr); ok {
				c.rule.addOutput(col.Name.Name.O)
			}
		}
	case *ast.Join:
		if n.NaturalJoin {
			c.err = reject("NATURAL joins are not allowed on this source: join ON named columns")
		}
	case *ast.SelectStmt:
		mysqlOrderByAliases(n, c.exempt)
	}
	return n, false
}

func (c *mysqlColumnCollector) Leave(n ast.Node) (ast.Node, bool) { return n, c.err == nil }

// mysqlOrderByAliases marks the bare ORDER BY names of s that name an
// alias of its own select list: MySQL resolves those to the alias first.
func mysqlOrderByAliases(s *ast.SelectStmt, exempt map[*ast.ColumnName]bool) {
	if s.Fields == nil || s.OrderBy == nil {
		return
	}
	aliases := map[string]bool{}
	for _, f := range s.Fields.Fields {
		if f.AsName.L != "" {
			aliases[f.AsName.L] = true
		}
	}
	for _, item := range s.OrderBy.Items {
		col, ok := item.Expr.(*ast.ColumnNameExpr)
		if ok && col.Name.Table.O == "" && col.Name.Schema.O == "" && aliases[col.Name.Name.L] {
			exempt[col.Name] = true
		}
	}
}

// mysqlColumnChecker checks every column name: in expressions and in
// JOIN … USING.
type mysqlColumnChecker struct {
	rule   *columnRule
	exempt map[*ast.ColumnName]bool
	err    *RejectedError
}

func (c *mysqlColumnChecker) Enter(n ast.Node) (ast.Node, bool) {
	if c.err != nil {
		return n, true
	}
	col, ok := n.(*ast.ColumnName)
	if !ok || c.exempt[col] {
		return n, false
	}
	switch {
	case col.Schema.O != "":
		c.err = reject("schema-qualified column references are not allowed")
	case col.Table.O != "":
		c.err = c.rule.qualified(col.Table.O, col.Name.O)
	default:
		c.err = c.rule.unqualified(col.Name.O)
	}
	return n, false
}

func (c *mysqlColumnChecker) Leave(n ast.Node) (ast.Node, bool) { return n, c.err == nil }
