package sqlguard

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// PostgreSQL reads q.f, when f is not a column of q, as the call f(q) on
// the whole row ("attribute notation"). libpg_query parses it as a column
// reference, so the function allow-list never sees it: SELECT s.to_json
// FROM sales s calls to_json. pgAttributes closes that door for every
// query, restricted tables or not: a qualified reference must name a
// column the guard knows its qualifier has. It resolves qualifiers by
// query level, as the server does:
//
//   - an allow-listed table has its Columns; a table whose Columns are
//     empty is of unknown shape, and qualified references to it are
//     refused;
//   - a subquery or CTE has the names its select list defines (an alias,
//     a column's name, a function's name), renamed by a column alias
//     list; a * in it adds the columns of what it expands, if known;
//   - a table with a column alias list (t AS x(a, b)) is of unknown
//     shape, since the guard does not know the column order.
//
// A qualifier is checked against every relation of that name at its
// level and the levels around it (a JOIN … ON condition may reach an
// outer level's relation of the same name), so a reused alias can only
// make the check stricter.
func pgAttributes(policy map[string]Table, sel *pg.SelectStmt) error {
	return pgAttrSelect(policy, sel, nil)
}

// pgRel is what a FROM item or CTE exposes.
type pgRel struct {
	names []string // in order; "" where the guard does not know the name
	known bool     // false: the shape is unknown (no schema, or a * over one)
	order bool     // names are in column order (no * expanded)
}

func (r pgRel) has(name string) bool {
	for _, n := range r.names {
		if n == name {
			return true
		}
	}
	return false
}

// pgLevel is one query level: the CTEs its WITH defines and its FROM
// items by reference name.
type pgLevel struct {
	parent *pgLevel
	ctes   map[string]pgRel
	rels   map[string][]pgRel
}

func (l *pgLevel) cte(name string) (pgRel, bool) {
	for ; l != nil; l = l.parent {
		if r, ok := l.ctes[name]; ok {
			return r, true
		}
	}
	return pgRel{}, false
}

// pgAttrSelect checks the qualified references of s, whose enclosing
// levels are parent, and of everything under it.
func pgAttrSelect(policy map[string]Table, s *pg.SelectStmt, parent *pgLevel) error {
	if wc := s.WithClause; wc != nil && len(wc.Ctes) > 0 {
		withLevel := &pgLevel{parent: parent, ctes: map[string]pgRel{}}
		for _, n := range wc.Ctes {
			cte := n.GetCommonTableExpr()
			body := cte.GetCtequery().GetSelectStmt()
			if body == nil {
				continue // the walker has refused it already
			}
			if err := pgAttrSelect(policy, body, withLevel); err != nil {
				return err
			}
			withLevel.ctes[cte.Ctename] = pgRename(pgOutputs(policy, body, withLevel), pgStrings(cte.Aliascolnames))
		}
		parent = withLevel
	}
	if s.Op != pg.SetOperation_SETOP_NONE {
		for _, arm := range []*pg.SelectStmt{s.Larg, s.Rarg} {
			if arm != nil {
				if err := pgAttrSelect(policy, arm, parent); err != nil {
					return err
				}
			}
		}
	}
	level := pgFromLevel(policy, s, parent)
	var quals []*pg.Node
	for _, n := range s.FromClause {
		if err := pgAttrFrom(policy, n, parent, &quals); err != nil {
			return err
		}
	}
	check := func(m protoreflect.Message) (bool, error) {
		switch n := m.Interface().(type) {
		case *pg.SelectStmt:
			return false, pgAttrSelect(policy, n, level)
		case *pg.ColumnRef:
			return false, pgAttrRef(n, level)
		}
		return true, nil
	}
	var err error
	s.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "with_clause", "from_clause", "larg", "rarg":
			return true
		}
		err = pgWalk(fd, v, check)
		return err == nil
	})
	for _, q := range quals {
		if err != nil {
			break
		}
		err = pgWalkMessage(q.ProtoReflect(), check)
	}
	return err
}

// pgAttrFrom checks the subqueries of a FROM item (they see the enclosing
// levels, not their siblings: LATERAL is refused) and collects the ON
// conditions of its joins.
func pgAttrFrom(policy map[string]Table, n *pg.Node, parent *pgLevel, quals *[]*pg.Node) error {
	switch {
	case n.GetRangeSubselect() != nil:
		if sub := n.GetRangeSubselect().GetSubquery().GetSelectStmt(); sub != nil {
			return pgAttrSelect(policy, sub, parent)
		}
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		if j.Quals != nil {
			*quals = append(*quals, j.Quals)
		}
		if err := pgAttrFrom(policy, j.Larg, parent, quals); err != nil {
			return err
		}
		return pgAttrFrom(policy, j.Rarg, parent, quals)
	}
	return nil
}

// pgFromLevel builds the level of s's FROM items.
func pgFromLevel(policy map[string]Table, s *pg.SelectStmt, parent *pgLevel) *pgLevel {
	level := &pgLevel{parent: parent, rels: map[string][]pgRel{}}
	var add func(n *pg.Node)
	add = func(n *pg.Node) {
		switch {
		case n.GetRangeVar() != nil:
			rv := n.GetRangeVar()
			refname := rv.Relname
			if rv.Alias != nil {
				refname = rv.Alias.Aliasname
			}
			rel, ok := parent.cte(rv.Relname)
			if !ok {
				t := policy[rv.Relname]
				rel = pgRel{names: t.Columns, known: len(t.Columns) > 0, order: false}
			}
			if rv.Alias != nil && len(rv.Alias.Colnames) > 0 {
				rel = pgRename(rel, pgStrings(rv.Alias.Colnames))
			}
			level.rels[refname] = append(level.rels[refname], rel)
		case n.GetRangeSubselect() != nil:
			rs := n.GetRangeSubselect()
			sub := rs.GetSubquery().GetSelectStmt()
			if rs.Alias == nil || sub == nil {
				return
			}
			rel := pgRename(pgOutputs(policy, sub, parent), pgStrings(rs.Alias.Colnames))
			level.rels[rs.Alias.Aliasname] = append(level.rels[rs.Alias.Aliasname], rel)
		case n.GetJoinExpr() != nil:
			add(n.GetJoinExpr().Larg)
			add(n.GetJoinExpr().Rarg)
		}
	}
	for _, n := range s.FromClause {
		add(n)
	}
	return level
}

// pgOutputs is what s exposes as a subquery or CTE; parent holds the
// levels around s.
func pgOutputs(policy map[string]Table, s *pg.SelectStmt, parent *pgLevel) pgRel {
	if s.WithClause != nil && len(s.WithClause.Ctes) > 0 {
		withLevel := &pgLevel{parent: parent, ctes: map[string]pgRel{}}
		for _, n := range s.WithClause.Ctes {
			cte := n.GetCommonTableExpr()
			if body := cte.GetCtequery().GetSelectStmt(); body != nil {
				withLevel.ctes[cte.Ctename] = pgRename(pgOutputs(policy, body, withLevel), pgStrings(cte.Aliascolnames))
			}
		}
		parent = withLevel
	}
	if s.Op != pg.SetOperation_SETOP_NONE {
		if s.Larg == nil {
			return pgRel{}
		}
		return pgOutputs(policy, s.Larg, parent) // the left arm names the columns
	}
	level := pgFromLevel(policy, s, parent)
	out := pgRel{known: true, order: true}
	for _, n := range s.TargetList {
		t := n.GetResTarget()
		if t == nil {
			return pgRel{}
		}
		if ref := t.GetVal().GetColumnRef(); ref != nil && t.Name == "" && len(ref.Fields) > 0 && ref.Fields[len(ref.Fields)-1].GetAStar() != nil {
			// * or q.*: the columns of what it expands, order unknown.
			out.order = false
			for name, rels := range level.rels {
				if len(ref.Fields) == 2 && ref.Fields[0].GetString_().GetSval() != name {
					continue
				}
				for _, r := range rels {
					if !r.known {
						return pgRel{}
					}
					out.names = append(out.names, r.names...)
				}
			}
			continue
		}
		out.names = append(out.names, pgTargetName(t))
	}
	return out
}

// pgTargetName is the name PostgreSQL gives a select-list entry, or ""
// where the guard does not follow its rules (never a name it lacks).
func pgTargetName(t *pg.ResTarget) string {
	if t.Name != "" {
		return t.Name
	}
	n := t.GetVal()
	for n.GetTypeCast() != nil {
		if arg := n.GetTypeCast().GetArg(); arg.GetColumnRef() != nil || arg.GetFuncCall() != nil {
			n = arg
			continue
		}
		break
	}
	switch {
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().GetFields()
		return f[len(f)-1].GetString_().GetSval()
	case n.GetFuncCall() != nil:
		names := pgStrings(n.GetFuncCall().GetFuncname())
		return names[len(names)-1]
	}
	return ""
}

// pgRename applies a column alias list: it renames the first columns.
// Without a known column order the result is of unknown shape.
func pgRename(r pgRel, aliases []string) pgRel {
	if len(aliases) == 0 {
		return r
	}
	if !r.known || !r.order {
		return pgRel{}
	}
	names := append([]string{}, aliases...)
	if len(r.names) > len(aliases) {
		names = append(names, r.names[len(aliases):]...)
	}
	return pgRel{names: names, known: true, order: true}
}

// pgAttrRef checks one column reference seen from level.
func pgAttrRef(ref *pg.ColumnRef, level *pgLevel) error {
	if len(ref.Fields) != 2 || ref.Fields[1].GetString_() == nil {
		return nil // a bare name, * or q.*: no attribute notation
	}
	q, f := ref.Fields[0].GetString_().GetSval(), ref.Fields[1].GetString_().GetSval()
	found := false
	for l := level; l != nil; l = l.parent {
		for _, r := range l.rels[q] {
			found = true
			if !r.known {
				return reject("%q.%q: the columns of %q are not known: test the data source first, or name a subquery's columns", shorten(q), shorten(f), shorten(q))
			}
			if !r.has(f) {
				return reject("%q is not a column of %q (PostgreSQL would read %s.%s as the function call %s(%s))", shorten(f), shorten(q), shorten(q), shorten(f), shorten(f), shorten(q))
			}
		}
	}
	if !found {
		return reject("column %q is qualified by %q, which names no table of the query", shorten(f), shorten(q))
	}
	return nil
}

// pgWalkMessage calls f on m and, while f says to descend, on what is
// under it; the first error ends the walk.
func pgWalkMessage(m protoreflect.Message, f func(protoreflect.Message) (bool, error)) error {
	descend, err := f(m)
	if err != nil || !descend {
		return err
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		err = pgWalk(fd, v, f)
		return err == nil
	})
	return err
}

// pgWalk walks the messages of one field.
func pgWalk(fd protoreflect.FieldDescriptor, v protoreflect.Value, f func(protoreflect.Message) (bool, error)) error {
	switch {
	case fd.Message() == nil || fd.IsMap():
		return nil
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := pgWalkMessage(l.Get(i).Message(), f); err != nil {
				return err
			}
		}
		return nil
	}
	return pgWalkMessage(v.Message(), f)
}
