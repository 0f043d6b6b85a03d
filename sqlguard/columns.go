package sqlguard

import (
	"slices"
	"strings"
)

// columnRule checks the column references of a PostgreSQL or MySQL query
// that reads at least one restricted table (Table.Restricted). The guard
// has no schema, so it cannot tell which table an unqualified name
// belongs to; the rule is built so that it never needs to:
//
//   - no * or t.* (count(*) is fine), no NATURAL join, no column alias
//     list on a table or an alias on a join (they rename columns by
//     position);
//   - a name qualified by a restricted table (or its alias) must be one of
//     that table's Columns;
//   - a name qualified by an unrestricted table may be any column of it;
//   - a name qualified by a subquery or CTE must be an output name defined
//     in the query (a select-list name, a CTE or subquery column list);
//   - an unqualified name must be one of the Columns of every restricted
//     table the query reads, so that whichever of them it resolves to it
//     is exposed; columns of unrestricted tables, subqueries and CTEs
//     must then be qualified;
//   - the one exception: a bare name in ORDER BY that is an alias of the
//     same SELECT's list (both dialects resolve it to the alias first);
//   - an unqualified name that is also the name or alias of a restricted
//     table is refused (PostgreSQL reads it as the whole row).
//
// Scopes are merged: a qualifier used for different things at different
// levels of the query must pass every check it could mean.
type columnRule struct {
	fold       func(string) string // how the dialect compares names
	restricted []Table             // the restricted tables the query reads
	common     map[string]bool     // folded columns every one of them exposes
	refs       map[string]*refKinds
	outputs    map[string]bool // folded output names defined in the query
}

// refKinds is what a qualifier may name.
type refKinds struct {
	tables  []Table // restricted tables
	open    bool    // an unrestricted table
	derived bool    // a subquery or CTE
}

// newColumnRule returns nil when the query reads no restricted table: the
// column checks then do not apply.
func newColumnRule(policy map[string]Table, read tablesRead, fold func(string) string) *columnRule {
	var restricted []Table
	for _, name := range read.sorted() {
		if t := policy[name]; t.Restricted {
			restricted = append(restricted, t)
		}
	}
	if len(restricted) == 0 {
		return nil
	}
	r := &columnRule{fold: fold, restricted: restricted, refs: map[string]*refKinds{}, outputs: map[string]bool{}}
	for i, t := range restricted {
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if i == 0 || r.common[fold(c)] {
				cols[fold(c)] = true
			}
		}
		r.common = cols
	}
	return r
}

func (r *columnRule) ref(name string) *refKinds {
	k := r.refs[r.fold(name)]
	if k == nil {
		k = &refKinds{}
		r.refs[r.fold(name)] = k
	}
	return k
}

// addTable records a table reference: refname (its alias or its name)
// names the policy table or CTE called name.
func (r *columnRule) addTable(policy map[string]Table, refname, name string, isCTE bool) {
	k := r.ref(refname)
	if isCTE {
		k.derived = true
	}
	t, ok := policy[name]
	switch {
	case !ok:
	case t.Restricted:
		k.tables = append(k.tables, t)
	default:
		k.open = true
	}
}

func (r *columnRule) addDerived(refname string) {
	if refname != "" {
		r.ref(refname).derived = true
	}
}

func (r *columnRule) addOutput(name string) {
	if name != "" {
		r.outputs[r.fold(name)] = true
	}
}

func (r *columnRule) names() string {
	names := make([]string, len(r.restricted))
	for i, t := range r.restricted {
		names[i] = t.Name
	}
	return shorten(strings.Join(names, ", "))
}

func (r *columnRule) star() *RejectedError {
	return reject("name the columns: this source exposes only some columns of %s", r.names())
}

func (r *columnRule) unqualified(name string) *RejectedError {
	if k := r.refs[r.fold(name)]; k != nil && len(k.tables) > 0 {
		return reject("%q names table %s: whole-row references are not allowed on this source", shorten(name), shorten(k.tables[0].Name))
	}
	if r.common[r.fold(name)] {
		return nil
	}
	if len(r.restricted) == 1 {
		return reject("column %q is not exposed by table %s (qualify a column of another table, subquery or CTE)", shorten(name), shorten(r.restricted[0].Name))
	}
	return reject("column %q is not exposed by every table of %s: qualify it with its table", shorten(name), r.names())
}

func (r *columnRule) qualified(qualifier, name string) *RejectedError {
	k := r.refs[r.fold(qualifier)]
	if k == nil {
		return reject("column %q is qualified by %q, which names no table of the query", shorten(name), shorten(qualifier))
	}
	for _, t := range k.tables {
		if !slices.ContainsFunc(t.Columns, func(c string) bool { return r.fold(c) == r.fold(name) }) {
			return reject("column %q of table %s is not exposed by this source", shorten(name), shorten(t.Name))
		}
	}
	if k.derived && !r.outputs[r.fold(name)] {
		return reject("column %q of %q is not a column the query defines", shorten(name), shorten(qualifier))
	}
	return nil
}

func identity(s string) string { return s }
