package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// TestAuditAccessOffline: the offline review folds the data directory's log
// up to the moment asked, as the API does.
func TestAuditAccessOffline(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	org := uuid.NewString()
	stream := eventstore.MustStreamName(tenancy.Category, org, org)
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, e := range []domain.Event{
		&tenancy.OrganizationCreated{OrgID: org, Name: "Acme", OwnerSub: "alice"},
		&tenancy.MemberAdded{Sub: "bob", Roles: []string{"analyst"}},
		&tenancy.MemberRemoved{Sub: "bob"},
	} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ev := eventstore.NewEvent{Type: e.EventType(), Data: data, Metadata: eventstore.Metadata{
			OrgID: org, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1, OccurredAt: start.Add(time.Duration(i) * time.Hour),
		}}
		if _, err := store.Append(ctx, stream, eventstore.Any(), []eventstore.NewEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at     string
		member bool
	}{{"2026-03-01T09:30:00Z", false}, {"2026-03-01T10:30:00Z", true}, {"2026-03-01T11:30:00+00:00", false}} {
		var out, stderr bytes.Buffer
		args := []string{"audit", "access", "--data-dir", dataDir, "--log-level", "error", "--org", org, "--subject", "user:bob", "--at", tt.at}
		if err := run(ctx, args, &out, &stderr); err != nil {
			t.Fatalf("audit access: %v\n%s", err, stderr.Bytes())
		}
		var got accessreview.SubjectAccess
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("decode %q: %v", out.Bytes(), err)
		}
		if got.Member != tt.member || got.Subject != "user:bob" || (tt.member && len(got.Roles) != 1) {
			t.Errorf("at %s: %+v, want member %v", tt.at, got, tt.member)
		}
	}
	var out, stderr bytes.Buffer
	if err := run(ctx, []string{"audit", "access", "--data-dir", dataDir, "--org", org, "--subject", "bob"}, &out, &stderr); err == nil {
		t.Error("a subject without its kind was accepted")
	}
}
