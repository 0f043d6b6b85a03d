package sqlguard

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// pgColumns applies the column rule (columnRule) to a PostgreSQL query the
// walker has accepted. It does nothing when the query reads no restricted
// table.
func pgColumns(policy map[string]Table, read tablesRead, sel *pg.SelectStmt) error {
	r := newColumnRule(policy, read, identity)
	if r == nil {
		return nil
	}
	// First what the query's names may mean, then every reference.
	ctes := map[string]bool{}
	var tables []*pg.RangeVar
	var using []string
	exempt := map[*pg.ColumnRef]bool{}
	var err error
	pgVisit(sel.ProtoReflect(), func(m protoreflect.Message) bool {
		switch n := m.Interface().(type) {
		case *pg.RangeVar:
			if n.Alias != nil && len(n.Alias.Colnames) > 0 {
				err = reject("column aliases on a table (t AS x(a, b)) are not allowed on this source")
			}
			tables = append(tables, n)
		case *pg.RangeSubselect:
			if n.Alias != nil {
				r.addDerived(n.Alias.Aliasname)
				for _, c := range pgStrings(n.Alias.Colnames) {
					r.addOutput(c)
				}
			}
		case *pg.CommonTableExpr:
			ctes[n.Ctename] = true
			r.addDerived(n.Ctename)
			for _, c := range pgStrings(n.Aliascolnames) {
				r.addOutput(c)
			}
		case *pg.ResTarget:
			r.addOutput(n.Name)
			if n.Name == "" {
				if fields := n.GetVal().GetColumnRef().GetFields(); len(fields) > 0 {
					r.addOutput(fields[len(fields)-1].GetString_().GetSval())
				}
			}
		case *pg.JoinExpr:
			switch {
			case n.IsNatural:
				err = reject("NATURAL joins are not allowed on this source: join ON named columns")
			case n.Alias != nil || n.JoinUsingAlias != nil:
				err = reject("aliases on a join are not allowed on this source")
			}
			using = append(using, pgStrings(n.UsingClause)...)
		case *pg.SelectStmt:
			pgOrderByAliases(n, exempt)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		refname := t.Relname
		if t.Alias != nil {
			refname = t.Alias.Aliasname
		}
		r.addTable(policy, refname, t.Relname, ctes[t.Relname])
	}
	for _, name := range using {
		if e := r.unqualified(name); e != nil {
			return e
		}
	}
	pgVisit(sel.ProtoReflect(), func(m protoreflect.Message) bool {
		ref, ok := m.Interface().(*pg.ColumnRef)
		if !ok || exempt[ref] {
			return true
		}
		var e *RejectedError
		fields := ref.Fields
		switch {
		case len(fields) == 0:
		case fields[len(fields)-1].GetAStar() != nil:
			e = r.star()
		case len(fields) == 1:
			e = r.unqualified(fields[0].GetString_().GetSval())
		case len(fields) == 2:
			e = r.qualified(fields[0].GetString_().GetSval(), fields[1].GetString_().GetSval())
		default:
			e = reject("schema-qualified column references are not allowed")
		}
		if e != nil {
			err = e
		}
		return err == nil
	})
	return err
}

// pgOrderByAliases marks the bare ORDER BY names of s that name an alias
// of its own select list: PostgreSQL resolves those to the alias first.
func pgOrderByAliases(s *pg.SelectStmt, exempt map[*pg.ColumnRef]bool) {
	if s.Op != pg.SetOperation_SETOP_NONE {
		return
	}
	aliases := map[string]bool{}
	for _, t := range s.TargetList {
		if name := t.GetResTarget().GetName(); name != "" {
			aliases[name] = true
		}
	}
	for _, n := range s.SortClause {
		ref := n.GetSortBy().GetNode().GetColumnRef()
		if ref != nil && len(ref.Fields) == 1 && aliases[ref.Fields[0].GetString_().GetSval()] {
			exempt[ref] = true
		}
	}
}

// pgVisit calls f on m and, while f returns true, on every message under
// it. It stops the whole walk when f returns false.
func pgVisit(m protoreflect.Message, f func(protoreflect.Message) bool) bool {
	if !f(m) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = pgVisit(l.Get(i).Message(), f)
			}
			return ok
		}
		if fd.IsMap() {
			return true
		}
		ok = pgVisit(v.Message(), f)
		return ok
	})
	return ok
}
