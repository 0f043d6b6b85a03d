package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// TestEnvelopeFieldsAreAllWritten holds writeEnvelope's list against the
// envelope type: a field added to it must be added to the snapshot too.
func TestEnvelopeFieldsAreAllWritten(t *testing.T) {
	t.Parallel()
	var fields []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(prefix+f.Name+".", f.Type)
				continue
			}
			fields = append(fields, prefix+f.Name)
		}
	}
	walk("", reflect.TypeFor[eventstore.Envelope]())
	if !slices.Equal(fields, envelopeFields) {
		t.Fatalf("the envelope's fields are\n%q\nwriteEnvelope writes\n%q", fields, envelopeFields)
	}
	if _, err := SnapshotFormat(); err != nil {
		t.Fatal(err)
	}
}

// TestSaveAndLoadOrgRoundTrip fills every model for two organizations,
// saves one, loads it into empty models and compares every row.
func TestSaveAndLoadOrgRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := NewModels()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, org := range []string{"org-a", "org-b"} {
		scope, _ := access.EventScope(org)
		must(t, src.Tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: "Name " + org, CreatedAt: at}))
		must(t, src.Tenancy.PutMember(ctx, scope, projections.Member{Sub: "alice", Roles: []string{}, AddedAt: at}))
		must(t, src.Tenancy.PutMember(ctx, scope, projections.Member{Issuer: "https://idp", Sub: "bob", Roles: []string{"viewer"}}))
		must(t, src.Tenancy.PutServiceAccount(ctx, scope, projections.ServiceAccount{ID: "sa", Permissions: nil, RevokedAt: &at, TokenID: "jti"}))
		must(t, src.Tenancy.PutIssuer(ctx, scope, projections.IssuerBinding{Issuer: "https://idp", BoundAt: at}))
		must(t, src.Bots.PutBot(ctx, scope, projections.Bot{ID: "b1", Name: "bot", Instructions: "secret " + org, Version: 3}))
		must(t, src.Knowledge.PutKnowledgeBase(ctx, scope, projections.KnowledgeBase{ID: "kb"}))
		must(t, src.Knowledge.PutDocument(ctx, scope, projections.Document{ID: "d1", KnowledgeBaseID: "kb"}))
		must(t, src.Chunks.ReplaceChunks(ctx, scope, "d1", []projections.StoredChunk{{ID: "c1", DocumentID: "d1", KnowledgeBaseID: "kb", Text: "text", Embedding: []float32{0.5, -1}}}))
		must(t, src.Conversations.PutConversation(ctx, scope, projections.Conversation{ID: "conv", Messages: []projections.ConversationMessage{}}))
		must(t, src.DataSources.PutDataSource(ctx, scope, projections.DataSource{ID: "src"}))
		must(t, src.Analytics.PutAnalyticsJob(ctx, scope, projections.AnalyticsJob{ID: "job", Pages: 1}))
		must(t, src.Analytics.PutAnalyticsPage(ctx, scope, "job", 0, json.RawMessage(`[[1]]`)))
		for i := range 3 {
			env := eventstore.Envelope{
				ID: eventstore.NewEventID(), Type: "BotCreated", Position: uint64(10*i + len(org)),
				Stream: eventstore.MustStreamName("bot", org, "b1"), Data: json.RawMessage(`{"id":"b1"}`),
				Metadata: eventstore.Metadata{OrgID: org, CorrelationID: []string{"c1", "c1", ""}[i], OccurredAt: at,
					Actor: eventstore.Actor{Subject: "alice", Kind: "user", Scope: []string{}}},
			}
			must(t, src.Audit.Add(ctx, scope, env))
		}
	}
	var buf bytes.Buffer
	must(t, src.SaveOrg(&buf, "org-a"))
	if bytes.Contains(buf.Bytes(), []byte("secret org-b")) {
		t.Fatal("org-a's part holds org-b's rows")
	}
	dst := NewModels()
	must(t, dst.LoadOrg(&buf, "org-a"))
	if got := dst.Orgs(); !slices.Equal(got, []string{"org-a"}) {
		t.Fatalf("orgs after load: %v", got)
	}
	var again bytes.Buffer
	must(t, dst.SaveOrg(&again, "org-a"))
	var first bytes.Buffer
	must(t, src.SaveOrg(&first, "org-a"))
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Fatal("saving the loaded models gives other bytes")
	}
	scope, _ := access.EventScope("org-a")
	sa, err := dst.Tenancy.ServiceAccount(ctx, scope, "sa")
	if err != nil || sa.TokenID != "jti" || sa.RevokedAt == nil || !sa.RevokedAt.Equal(at) {
		t.Fatalf("service account: %+v %v", sa, err)
	}
	events, err := dst.Audit.Events(ctx, scope, projections.AuditQuery{})
	if err != nil || len(events) != 3 || events[2].Sequence != 3 || events[0].Event.Actor.Scope == nil {
		t.Fatalf("audit: %+v %v", events, err)
	}
	rows, err := dst.Audit.Narratives(ctx, scope, projections.NarrativeQuery{})
	if err != nil || len(rows) != 1 || rows[0].Steps != 2 {
		t.Fatalf("narratives: %+v %v", rows, err)
	}
	hits, err := dst.Chunks.Search(ctx, scope, projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb"}, K: 1, Text: "text", Vector: []float32{0.5, -1}})
	if err != nil || len(hits) != 1 {
		t.Fatalf("search: %+v %v", hits, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
