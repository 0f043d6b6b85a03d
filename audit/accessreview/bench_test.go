package accessreview_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// benchLog writes, to an embedded log, an organization of 10,000 events:
// 2,000 members added, each changing roles twice, 1,000 knowledge bases
// created and granted to one member each, 1,000 grant changes, and as many
// events of another organization interleaved.
func benchLog(b *testing.B) (eventstore.Store, string) {
	b.Helper()
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(b.TempDir(), "events.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	orgID, otherID := uuid.NewString(), uuid.NewString()
	start := time.Now().Add(-time.Hour).UTC()
	n := 0
	write := func(orgID, category, entity string, evs ...domain.Event) {
		batch := make([]eventstore.NewEvent, 0, len(evs))
		for _, e := range evs {
			data, err := json.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			n++
			batch = append(batch, eventstore.NewEvent{Type: e.EventType(), Data: data, Metadata: eventstore.Metadata{
				OrgID: orgID, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1,
				OccurredAt: start.Add(time.Duration(n) * time.Millisecond),
			}})
		}
		if _, err := store.Append(ctx, eventstore.MustStreamName(category, orgID, entity), eventstore.Any(), batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range []string{orgID, otherID} {
		write(id, tenancy.Category, id, &tenancy.OrganizationCreated{OrgID: id, Name: "Org", OwnerSub: "alice"})
	}
	count := 1
	for i := 0; count < 10_000; i++ {
		sub := fmt.Sprintf("user-%d", i%2000)
		kb := fmt.Sprintf("kb-%d", i%1000)
		for _, id := range []string{orgID, otherID} {
			switch {
			case i < 2000:
				write(id, tenancy.Category, id, &tenancy.MemberAdded{Sub: sub, Roles: []string{"member"}},
					&tenancy.MemberRolesChanged{Sub: sub, Roles: []string{"analyst"}}, &tenancy.MemberRolesChanged{Sub: sub, Roles: []string{"viewer", "member"}})
			case i < 3000:
				write(id, knowledge.KnowledgeBaseCategory, kb, &knowledge.KnowledgeBaseCreated{ID: kb, Name: kb},
					&knowledge.KnowledgeBaseGrantsSet{Grants: []knowledge.Grant{{Subject: "user:" + sub, Permissions: []string{"kb:read"}}}})
			default:
				write(id, knowledge.KnowledgeBaseCategory, kb,
					&knowledge.KnowledgeBaseGrantsSet{Grants: []knowledge.Grant{{Subject: "user:user-7", Permissions: []string{"kb:read", "kb:write"}}, {Subject: "role:viewer", Permissions: []string{"kb:read"}}}})
			}
		}
		switch {
		case i < 2000:
			count += 3
		case i < 3000:
			count += 2
		default:
			count++
		}
	}
	return store, orgID
}

// BenchmarkAccessAnswer is one access answer on an organization whose log
// holds 10,000 events (and as many of another organization): the fold of
// the log up to now and the answer, for a subject and for a knowledge base.
func BenchmarkAccessAnswer(b *testing.B) {
	store, orgID := benchLog(b)
	registry := events.NewRegistry()
	ctx := context.Background()
	for _, bb := range []struct {
		name string
		ask  func(*accessreview.Snapshot) int
	}{
		{"subject", func(s *accessreview.Snapshot) int {
			return len(s.Subject(accessreview.Subject{Kind: "user", ID: "user-7"}).Grants)
		}},
		{"resource", func(s *accessreview.Snapshot) int {
			return len(s.Resource(accessreview.Resource{Kind: accessreview.KnowledgeBase, ID: "kb-7"}).Subjects)
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var folded int
			for b.Loop() {
				snap, err := accessreview.Fold(ctx, store, registry, orgID, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if bb.ask(snap) == 0 {
					b.Fatal("empty answer")
				}
				folded = snap.Events
			}
			if folded != 10_000 {
				b.Fatalf("folded %d events, want 10000", folded)
			}
			b.ReportMetric(float64(folded), "events/op")
		})
	}
}
