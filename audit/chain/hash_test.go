package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// definedHash is the chain's definition (doc.go) written the plain way,
// with encoding/json and the stream's String: Hasher, which writes the
// same bytes without reflection, must agree with it, or every recorded
// chain and signed checkpoint would stop verifying.
func definedHash(t *testing.T, prev Digest, seq uint64, env eventstore.Envelope) Digest {
	t.Helper()
	meta := env.Metadata
	meta.OccurredAt = meta.OccurredAt.UTC()
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	field := func(b []byte, f []byte) []byte { return append(binary.BigEndian.AppendUint64(b, uint64(len(f))), f...) }
	var b []byte
	b = field(b, []byte("palisade audit chain v1"))
	b = field(b, prev[:])
	b = binary.BigEndian.AppendUint64(b, seq)
	b = field(b, env.ID[:])
	b = field(b, []byte(env.Type))
	b = field(b, []byte(env.Stream.String()))
	b = binary.BigEndian.AppendUint64(b, env.StreamVersion)
	b = field(b, env.Data)
	b = field(b, metaJSON)
	return sha256.Sum256(b)
}

func TestHashIsTheDefinition(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		env  eventstore.Envelope
	}{
		{"plain", eventstore.Envelope{ID: uuid.MustParse("0190a0a0-0000-7000-8000-000000000001"), Type: "BotUpdated",
			Stream: eventstore.MustStreamName("bot", "org-1", "b1"), StreamVersion: 3, Position: 99,
			Data: json.RawMessage(`{"name":"x"}`),
			Metadata: eventstore.Metadata{OrgID: "org-1", SchemaVersion: 1, OccurredAt: at,
				Actor: eventstore.Actor{Subject: "user-1", Kind: "user", Roles: []string{"owner"}}}}},
		{"every metadata field, escapes and an empty scope", eventstore.Envelope{ID: uuid.New(), Type: "T",
			Stream: eventstore.MustStreamName("kb", "org-2", "k1"), Data: json.RawMessage(`{"sealed":"…"}`),
			Metadata: eventstore.Metadata{OrgID: "org-2", CorrelationID: "c&d", CausationID: "e\u2028", TraceID: "t", SpanID: "s",
				Authorization: "allowed: <role>", IdempotencyKey: "k\x01", SchemaVersion: 2, OccurredAt: at,
				Actor: eventstore.Actor{Subject: "svc", Kind: "service", Scope: []string{}, CreatedBy: "u",
					OnBehalfOf: []string{"a", "b"}, InvokerKind: "user"}}}},
		{"empty data", eventstore.Envelope{Type: "X", Stream: eventstore.MustStreamName("org", "o", "o"),
			Metadata: eventstore.Metadata{OrgID: "o"}}},
	}
	h := NewHasher()
	for _, tt := range tests {
		prev := Digest{1, 2, 3}
		for seq := uint64(1); seq <= 2; seq++ { // the second time with the Hasher's buffers reused
			got, err := h.Hash(prev, seq, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if want := definedHash(t, prev, seq, tt.env); got != want {
				t.Fatalf("%s: hash %s, the definition gives %s", tt.name, got, want)
			}
			prev = got
		}
	}
}
