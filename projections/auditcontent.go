package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/sealing"
)

// ContentRedactor replaces the content fields of an event's payload by
// their hash and size (events.Registry is one).
type ContentRedactor interface {
	RedactContent(eventType string, data []byte) (json.RawMessage, events.Redaction, error)
	RedactContentWith(eventType string, data []byte, digest func(sum string) string) (json.RawMessage, events.Redaction, error)
	MapContent(eventType string, data []byte, replace func(path string, v []byte) ([]byte, error)) (json.RawMessage, error)
}

// DigestKeys hands out the keys of organizations' content digests
// (sealing/keyring).
type DigestKeys interface {
	DigestKey(ctx context.Context, orgID string) (sealing.DigestKey, error)
}

// WithDigestKeys makes the audit views show each content value's hash
// keyed under its organization's digest key, as the log records the
// hashes of content (events.DeclareDigest): a plain SHA-256 of short
// content, shown in an API answer or an export that outlives the
// organization's key, would confirm a guess of it. Without it (tests)
// they show the plain SHA-256.
func (q *Queries) WithDigestKeys(keys DigestKeys) *Queries {
	q.digests = keys
	return q
}

// redactor returns the redaction of orgID's events.
func (q *Queries) redactor(ctx context.Context, orgID string) (func(eventType string, data []byte) (json.RawMessage, events.Redaction, error), error) {
	if q.digests == nil {
		return q.redact.RedactContent, nil
	}
	key, err := q.digests.DigestKey(ctx, orgID)
	if errors.Is(err, sealing.ErrNoKey) {
		// The organization's key is destroyed: its content is shredded,
		// and what the model may still hold until it applies the close
		// is shown shredded too, never with a plain hash.
		return func(eventType string, data []byte) (json.RawMessage, events.Redaction, error) {
			var red events.Redaction
			out, err := q.redact.MapContent(eventType, data, func(_ string, v []byte) ([]byte, error) {
				if string(v) != string(events.Shredded) {
					red.Fields++
				}
				return events.Shredded, nil
			})
			return out, red, err
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit events: digest key: %w", err)
	}
	return func(eventType string, data []byte) (json.RawMessage, events.Redaction, error) {
		return q.redact.RedactContentWith(eventType, data, key.Digest)
	}, nil
}

// AuditContentRecorder records, before it is shown, that a principal read
// content from the audit record.
type AuditContentRecorder interface {
	RecordAuditContentRead(ctx context.Context, who access.Principal, d access.Decision, read *events.AuditContentRead) error
}

// Recorder is what the query services record on the write side: refused
// attempts and reads of audit content.
type Recorder interface {
	DenialRecorder
	AuditContentRecorder
}

// showAuditContent decides what of page the principal sees. audit:read
// gives the record, with each content value replaced by its hash (keyed,
// see WithDigestKeys) and size; content is shown only to a principal that also holds
// audit:read-content, and only after the read was recorded. A page that
// holds no content is shown as it is, unrecorded.
func (q *Queries) showAuditContent(ctx context.Context, who access.Principal, aq AuditQuery, page []AuditEvent) ([]AuditEvent, error) {
	redact, err := q.redactor(ctx, who.OrgID)
	if err != nil {
		return nil, err
	}
	redacted := make([]AuditEvent, len(page))
	content := 0
	for i, e := range page {
		data, red, err := redact(e.Event.Type, e.Event.Data)
		if err != nil {
			return nil, fmt.Errorf("audit events: %w", err)
		}
		content += red.Fields
		e.Event.Data = data
		redacted[i] = e
	}
	d := access.Decide(who, access.AuditReadContent, access.OrgResource(who.OrgID))
	if !d.Allowed {
		return redacted, nil
	}
	if content == 0 {
		return page, nil
	}
	read := &events.AuditContentRead{
		Types: aq.Types, Stream: aq.Stream, Actor: aq.Actor, CorrelationID: aq.CorrelationID,
		After: aq.After, Limit: aq.Limit, Events: len(page), ContentFields: content,
	}
	if err := q.recorder.RecordAuditContentRead(ctx, who, d, read); err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return page, nil
}
