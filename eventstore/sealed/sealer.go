// Package sealed keeps the content of events encrypted in the log: a
// [Store] wraps any eventstore.Store and, on the way in, replaces every
// content value of an event's payload (the fields its type declares
// audit:"content" in domain/events, and anything undeclared) with a
// [Value] sealed under the organization's newest data key; on the way out
// it opens them again. Metadata and record fields stay in clear, so the
// record of who did what remains readable without any key. Fields that
// hold a hash of content (declared audit:"digest": a document's content
// hash, a message's, a result's) are record fields the log keeps keyed:
// on the way in each is replaced by its HMAC under the organization's
// digest key (sealing.DigestKey, which goes with the data key), and
// reading leaves it so. A plain SHA-256 of short content would confirm a
// guess of it after the content was shredded; the keyed one cannot be
// checked without the key.
//
// Each value is bound, as AES-GCM additional data, to the organization, the
// key's id, and a purpose naming the event id, the event type and the
// field's path, so a sealed value cannot be moved to another event, field
// or organization. A value sealed under a key that no longer exists (an
// organization closed and its key destroyed, a person forgotten) opens to
// the [events.Shredded] marker instead of failing: the trail keeps its
// skeleton, and nothing of the content, not even a hash, is left. A value
// that exists but does not authenticate (altered) is an error.
//
// What the log, its copies and the bus carry is therefore the sealed form:
// the relay publishes from the inner store, and consumers open messages
// with [Sealer.Open] (consumer.Engine's opener). Payloads written before
// sealing existed, in clear, read as they are.
//
// A value may also be sealed under a per-subject key (a [Value] whose
// Subject names the key by its opaque handle; see sealing/keyring), so one
// person who is not a member can be forgotten without closing the
// organization. No event type seals under a subject key yet: the inbox,
// whose contacts they are for, has not landed; [Sealer.SealForSubject]
// and the open path are ready for it.
//
// The package must never write content in clear into the inner store,
// and never put plaintext or key material into an error or a log line.
package sealed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing"
)

// Keys hands out data keys (sealing/keyring implements it). Keys that do not
// exist are sealing.ErrNoKey.
type Keys interface {
	// DataKey returns the organization's newest key, creating it on first use.
	DataKey(ctx context.Context, orgID string) (sealing.DataKey, error)
	// DataKeyVersion returns one version of the organization's key, never
	// creating it.
	DataKeyVersion(ctx context.Context, orgID string, version uint32) (sealing.DataKey, error)
	// SubjectKey returns one subject's key and its handle, creating it on
	// first use; SubjectKeyByHandle finds it by handle, never creating it.
	SubjectKey(ctx context.Context, orgID, subject string) (sealing.DataKey, string, error)
	SubjectKeyByHandle(ctx context.Context, orgID, handle string) (sealing.DataKey, error)
	// DigestKey returns the key of the organization's content digests,
	// creating the organization's key on first use; it does not change
	// with rotations.
	DigestKey(ctx context.Context, orgID string) (sealing.DigestKey, error)
}

// Value is the JSON form of one sealed content value:
//
//	{"sealed":"<base64 nonce+ciphertext>","key":"<version>-<key id>"}
//	{"sealed":"…","key":"…","subject":"<handle of the subject key>"}
type Value struct {
	Sealed  string `json:"sealed"`
	Key     string `json:"key"`
	Subject string `json:"subject,omitempty"`
}

// ErrMalformed is returned for a value that has the shape of a [Value] but
// cannot be one (bad encoding, bad key id, bad handle).
var ErrMalformed = errors.New("sealed: malformed sealed value")

var b64 = base64.StdEncoding.Strict()

// Sealer seals and opens the content of event payloads.
type Sealer struct {
	registry *events.Registry
	keys     Keys
}

// NewSealer returns a sealer that finds content by registry's declarations
// and keys in keys.
func NewSealer(registry *events.Registry, keys Keys) *Sealer {
	return &Sealer{registry: registry, keys: keys}
}

// purpose binds a value to its event and field.
func purpose(id uuid.UUID, eventType, path string) string {
	return "event:" + id.String() + ":" + eventType + ":" + path
}

// Seal returns data with every content value sealed under orgID's newest
// data key, and every digest value (a hash of content, declared
// audit:"digest") replaced by its keyed form under orgID's digest key
// (sealing.DigestKey.Digest), which opening leaves as it is: no reader of
// the log, with or without keys, sees a plain hash of content, and once
// the key is destroyed the digest no longer confirms a guess. A payload
// without content or digests is returned as it is. Data that is
// not JSON is [eventstore.ErrInvalidEvent]: the walk of an object checks
// every value it splits off, and a payload that is not an object, sealed
// whole at path "$", is checked here, so that nothing that is not JSON is
// sealed into a value that is.
func (s *Sealer) Seal(ctx context.Context, orgID string, id uuid.UUID, eventType string, data json.RawMessage) (json.RawMessage, error) {
	var (
		key    sealing.DataKey
		digest sealing.DigestKey
	)
	out, err := s.registry.MapContentAndDigests(eventType, data, func(path string, v []byte) ([]byte, error) {
		if path == "$" && !json.Valid(v) {
			return nil, fmt.Errorf("%w: data is not valid JSON", eventstore.ErrInvalidEvent)
		}
		if key.IsZero() {
			var err error
			if key, err = s.keys.DataKey(ctx, orgID); err != nil {
				return nil, fmt.Errorf("data key: %w", err)
			}
		}
		return sealValue(key, "", orgID, purpose(id, eventType, path), v)
	}, func(_ string, v []byte) ([]byte, error) {
		if digest.IsZero() {
			var err error
			if digest, err = s.keys.DigestKey(ctx, orgID); err != nil {
				return nil, fmt.Errorf("digest key: %w", err)
			}
		}
		return digestValue(digest, v)
	})
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", eventType, err)
	}
	return out, nil
}

// digestValue returns the keyed form of one digest value as a JSON
// string: the digest of the string, or of the compact JSON of anything
// else (a digest field is a string; nothing else passes in clear either).
func digestValue(key sealing.DigestKey, v []byte) ([]byte, error) {
	if len(v) > 2 && v[0] == '"' && v[len(v)-1] == '"' && plainJSON(string(v[1:len(v)-1])) {
		// The form the domain writes (hex): no escape to read, and the
		// digest is hex, which JSON writes as it is.
		out := key.AppendDigest(append(make([]byte, 0, 66), '"'), string(v[1:len(v)-1]))
		return append(out, '"'), nil
	}
	var sum string
	if err := json.Unmarshal(v, &sum); err != nil {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return nil, fmt.Errorf("%w: digest value is not JSON", eventstore.ErrInvalidEvent)
		}
		sum = b.String()
	}
	return json.Marshal(key.Digest(sum))
}

// SealForSubject seals one content value (its JSON) under subject's key in
// orgID, for the field at path of the event id of eventType, and returns
// the [Value]'s JSON, which names the key by its handle only.
func (s *Sealer) SealForSubject(ctx context.Context, orgID, subject string, id uuid.UUID, eventType, path string, v json.RawMessage) (json.RawMessage, error) {
	key, handle, err := s.keys.SubjectKey(ctx, orgID, subject)
	if err != nil {
		return nil, fmt.Errorf("seal for subject: %w", err)
	}
	return sealValue(key, handle, orgID, purpose(id, eventType, path), v)
}

func sealValue(key sealing.DataKey, handle, orgID, purpose string, v []byte) ([]byte, error) {
	box, err := sealing.SealContent(key, orgID, v, purpose)
	if err != nil {
		return nil, err
	}
	return appendValue(nil, box, key.ID(), handle), nil
}

// appendValue appends the JSON of a [Value] sealing box: what json.Marshal
// writes for it, written directly. Base64, key ids and handles are made of
// characters JSON writes as they are; anything else goes through
// json.Marshal.
func appendValue(dst, box []byte, keyID, handle string) []byte {
	if !plainJSON(keyID) || !plainJSON(handle) {
		b, _ := json.Marshal(Value{Sealed: b64.EncodeToString(box), Key: keyID, Subject: handle})
		return append(dst, b...)
	}
	dst = append(dst, `{"sealed":"`...)
	dst = b64.AppendEncode(dst, box)
	dst = append(append(append(dst, `","key":"`...), keyID...), '"')
	if handle != "" {
		dst = append(append(append(dst, `,"subject":"`...), handle...), '"')
	}
	return append(dst, '}')
}

// plainJSON reports whether s is written by json.Marshal between quotes
// as it is: printable ASCII without quote, backslash or an HTML character.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Open returns env with its content opened (see [Sealer.OpenData]).
func (s *Sealer) Open(ctx context.Context, env eventstore.Envelope) (eventstore.Envelope, error) {
	data, err := s.OpenData(ctx, env)
	if err != nil {
		return eventstore.Envelope{}, err
	}
	env.Data = data
	return env, nil
}

// sealedMark is in every payload that holds a sealed value; a payload
// without it has nothing to open.
var sealedMark = []byte(`"sealed":`)

// OpenData returns env's payload with every sealed content value opened,
// or replaced by [events.Shredded] when its key no longer exists. Values
// in clear (payloads written before sealing) are kept as they are. A
// sealed value that is malformed or does not authenticate is an error.
func (s *Sealer) OpenData(ctx context.Context, env eventstore.Envelope) (json.RawMessage, error) {
	if !bytes.Contains(env.Data, sealedMark) {
		return env.Data, nil
	}
	out, err := s.registry.MapContent(env.Type, env.Data, func(path string, v []byte) ([]byte, error) {
		return s.openValue(ctx, env.OrgID, purpose(env.ID, env.Type, path), v)
	})
	if err != nil {
		return nil, fmt.Errorf("open %s at position %d: %w", env.Type, env.Position, err)
	}
	return out, nil
}

// openValue opens one content value if it is a sealed [Value].
func (s *Sealer) openValue(ctx context.Context, orgID, purpose string, v []byte) ([]byte, error) {
	sv, ok := parseValue(v)
	if !ok {
		return v, nil
	}
	version, err := sealing.ParseKeyID(sv.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	box, err := b64.DecodeString(sv.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding", ErrMalformed)
	}
	var key sealing.DataKey
	if sv.Subject != "" {
		key, err = s.keys.SubjectKeyByHandle(ctx, orgID, sv.Subject)
	} else {
		key, err = s.keys.DataKeyVersion(ctx, orgID, version)
	}
	switch {
	case errors.Is(err, sealing.ErrNoKey):
		return events.Shredded, nil
	case err != nil:
		return nil, err
	case key.ID() != sv.Key:
		// The version exists but is another key: the one that sealed this
		// was destroyed and a new one created since.
		return events.Shredded, nil
	}
	plain, err := sealing.OpenContent(key, orgID, box, purpose)
	if err != nil {
		return nil, err
	}
	if !json.Valid(plain) {
		return nil, fmt.Errorf("%w: opened value is not JSON", ErrMalformed)
	}
	return plain, nil
}

// parseValue reports whether v is exactly a [Value]: an object with string
// "sealed" and "key" and an optional string "subject", and nothing else.
// The form sealValue writes is read directly; anything else goes through
// encoding/json (FuzzParseValue holds the two to the same answers).
func parseValue(v []byte) (Value, bool) {
	if sv, ok := parseWritten(v); ok {
		return sv, true
	}
	return parseValueJSON(v)
}

// parseWritten reads {"sealed":"…","key":"…"} with an optional
// ,"subject":"…" before the brace, each string of plain characters (see
// plainJSON).
func parseWritten(v []byte) (Value, bool) {
	var sv Value
	rest, ok := cutString(v, `{"sealed":"`, &sv.Sealed)
	if !ok {
		return Value{}, false
	}
	if rest, ok = cutString(rest, `,"key":"`, &sv.Key); !ok {
		return Value{}, false
	}
	if string(rest) == "}" {
		return sv, true
	}
	if rest, ok = cutString(rest, `,"subject":"`, &sv.Subject); !ok || string(rest) != "}" {
		return Value{}, false
	}
	return sv, true
}

// cutString reads prefix, then plain characters up to a quote into dst,
// and returns what follows the quote.
func cutString(v []byte, prefix string, dst *string) ([]byte, bool) {
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return nil, false
	}
	v = v[len(prefix):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || !plainJSON(string(v[:end])) {
		return nil, false
	}
	*dst = string(v[:end])
	return v[end+1:], true
}

// parseValueJSON is parseValue through encoding/json, for any spelling.
func parseValueJSON(v []byte) (Value, bool) {
	if len(v) == 0 || v[0] != '{' {
		return Value{}, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return Value{}, false
	}
	if _, ok := m["subject"]; (ok && len(m) != 3) || (!ok && len(m) != 2) {
		return Value{}, false
	}
	var sv Value
	for name, dst := range map[string]*string{"sealed": &sv.Sealed, "key": &sv.Key, "subject": &sv.Subject} {
		raw, ok := m[name]
		if !ok {
			if name == "subject" {
				continue
			}
			return Value{}, false
		}
		if json.Unmarshal(raw, dst) != nil {
			return Value{}, false
		}
	}
	return sv, true
}
