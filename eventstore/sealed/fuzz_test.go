package sealed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// FuzzOpen feeds hostile payloads to the open path: whatever the bytes,
// opening must not panic, and may only error, pass a value through, mark
// it shredded, or open the one genuine sealed value (the canary) in the
// event it was sealed for.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		f.Fatal(err)
	}
	keys := keyring.NewMemory(master)
	sealer := sealed.NewSealer(events.NewRegistry(), keys)
	id := uuid.Must(uuid.NewV7())
	genuine, err := sealer.Seal(ctx, "org-a", id, "KnowledgeSearched", json.RawMessage(`{"query":"`+canary+`","k":1}`))
	if err != nil {
		f.Fatal(err)
	}
	subject, err := sealer.SealForSubject(ctx, "org-a", "alice", id, "KnowledgeSearched", "query", json.RawMessage(`"`+canary+`"`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("KnowledgeSearched", []byte(genuine), false)
	f.Add("KnowledgeSearched", []byte(`{"query":`+string(subject)+`}`), false)
	f.Add("KnowledgeSearched", []byte(`{"query":{"sealed":"AAAA","key":"1-00000000"}}`), false)
	f.Add("KnowledgeSearched", []byte(`{"query":{"sealed":"","key":"4294967296-zz"}}`), true)
	f.Add("DocumentAdded", []byte(`{"content":{"sealed":"%%%","key":"1-abcdef01","subject":"00"}}`), false)
	f.Add("Unknown", []byte(`{"sealed":"x","key":"y"}`), true)
	f.Add("TurnStarted", []byte(`[{"sealed":1}]`), false)
	f.Fuzz(func(t *testing.T, typ string, data []byte, otherEvent bool) {
		env := eventstore.Envelope{ID: id, Type: typ, Data: data, Metadata: eventstore.Metadata{OrgID: "org-a"}}
		if otherEvent {
			env.ID = uuid.Nil
		}
		got, err := sealer.Open(ctx, env)
		if err != nil {
			return
		}
		if bytes.Contains(got.Data, []byte(canary)) && !bytes.Contains(data, []byte(canary)) {
			if typ != "KnowledgeSearched" || env.ID != id {
				t.Fatalf("canary opened outside its event: %s %s", typ, got.Data)
			}
		}
	})
}
