package memory

import (
	"context"
	"slices"
	"sort"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// narrativeIndex is one organization's events by correlation id: the
// indexes (in the organization's list) of each correlation's events, and
// the correlations in the order of their first event.
type narrativeIndex struct {
	byID  map[string][]int
	roots []string
}

func (n *narrativeIndex) add(correlationID string, index int) {
	if _, ok := n.byID[correlationID]; !ok {
		n.roots = append(n.roots, correlationID)
	}
	n.byID[correlationID] = append(n.byID[correlationID], index)
}

func (a *Audit) Narratives(_ context.Context, scope access.Scope, q projections.NarrativeQuery) ([]projections.NarrativeRow, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	limit := limitOf(q.Limit)
	a.mu.RLock()
	defer a.mu.RUnlock()
	list, n := a.events[org], a.narratives[org]
	out := []projections.NarrativeRow{}
	if n == nil {
		return out, nil
	}
	// roots are in the order of their first event, so of its sequence
	// (index + 1): the ones below q.After end before end.
	end := len(n.roots)
	if q.After > 0 {
		end = sort.Search(len(n.roots), func(i int) bool {
			return uint64(n.byID[n.roots[i]][0])+1 >= q.After
		})
	}
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		id := n.roots[i]
		idx := n.byID[id]
		root := list[idx[0]]
		if !q.Since.IsZero() && root.Event.OccurredAt.Before(q.Since) {
			continue
		}
		if !q.Until.IsZero() && !root.Event.OccurredAt.Before(q.Until) {
			continue
		}
		if !narrativeMatches(list, idx, q) {
			continue
		}
		last := list[idx[len(idx)-1]]
		out = append(out, projections.NarrativeRow{
			CorrelationID: id, Root: root, LastSequence: last.Sequence,
			Steps: len(idx), EndedAt: last.Event.OccurredAt,
		})
	}
	return out, nil
}

// narrativeMatches reports whether the narrative's steps meet each filter
// of q, each by some step.
func narrativeMatches(list []projections.AuditEvent, idx []int, q projections.NarrativeQuery) bool {
	need := func(match func(e projections.AuditEvent) bool) bool {
		return slices.ContainsFunc(idx, func(i int) bool { return match(list[i]) })
	}
	if q.Actor != "" && !need(func(e projections.AuditEvent) bool { return e.Event.Actor.Subject == q.Actor }) {
		return false
	}
	if q.Type != "" && !need(func(e projections.AuditEvent) bool { return e.Event.Type == q.Type }) {
		return false
	}
	if q.Stream != "" && !need(func(e projections.AuditEvent) bool { return e.Event.Stream.String() == q.Stream }) {
		return false
	}
	return true
}
