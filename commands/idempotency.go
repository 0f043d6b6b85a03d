package commands

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// idempotencyStream names the stream holding the response recorded for
// key, used by who: "idempotency-{org}_{uuid of sha256(principal, key)}".
// The principal's kind, subject and permissions are part of the name, as
// for the in-process cache: a narrower token (or a demoted member) never
// gets the replay of what a wider one was allowed to do.
func idempotencyStream(who access.Principal, key string) (eventstore.StreamName, error) {
	org := who.OrgID
	if org == "" {
		org = access.PlatformScope
	}
	sum := sha256.Sum256([]byte(string(who.Kind) + "\x00" + who.Subject + "\x00" +
		strconv.FormatUint(uint64(who.Permissions), 16) + "\x00" + key))
	id := uuid.NewSHA1(uuid.NameSpaceOID, sum[:]).String()
	stream, err := eventstore.NewStreamName(events.IdempotencyCategory, org, id)
	if err != nil {
		return eventstore.StreamName{}, fmt.Errorf("idempotency stream: %w", err)
	}
	return stream, nil
}

// RecordedResponse returns the response recorded for who's key, and false
// when none was.
func (p *Pipeline) RecordedResponse(ctx context.Context, who access.Principal, key string) (*events.IdempotentResponseRecorded, bool, error) {
	stream, err := idempotencyStream(who, key)
	if err != nil {
		return nil, false, err
	}
	envs, err := p.store.ReadStream(ctx, stream, 0, 1)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", stream, err)
	}
	if len(envs) == 0 {
		return nil, false, nil
	}
	e, err := p.registry.Decode(envs[0].Type, envs[0].Data)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", stream, err)
	}
	rec, ok := e.(*events.IdempotentResponseRecorded)
	if !ok {
		return nil, false, fmt.Errorf("read %s: unexpected event %s", stream, envs[0].Type)
	}
	return rec, true, nil
}

// SameBody reports whether rec, recorded for who's key, answered a request
// whose body has the SHA-256 bodySHA256 (hex). The log keeps the recorded
// hash keyed (events.DeclareDigest), so it is compared with the keyed form;
// a response recorded before keyed digests holds the plain hash, which is
// compared as it is.
func (p *Pipeline) SameBody(ctx context.Context, who access.Principal, rec *events.IdempotentResponseRecorded, bodySHA256 string) (bool, error) {
	if rec.BodySHA256 == bodySHA256 {
		return true, nil
	}
	if p.digests == nil {
		return false, nil
	}
	org := who.OrgID
	if org == "" {
		org = access.PlatformScope
	}
	key, err := p.digests.DigestKey(ctx, org)
	if err != nil {
		return false, fmt.Errorf("idempotency record: digest key: %w", err)
	}
	return rec.BodySHA256 == key.Digest(bodySHA256), nil
}

// RecordResponse records the response to who's request under key, once:
// when one is already recorded (another process answered first) it
// returns that one and false.
func (p *Pipeline) RecordResponse(ctx context.Context, who access.Principal, key string, rec *events.IdempotentResponseRecorded) (*events.IdempotentResponseRecorded, bool, error) {
	stream, err := idempotencyStream(who, key)
	if err != nil {
		return nil, false, err
	}
	_, _, err = p.append(ctx, who, access.Decision{}, stream, eventstore.NoStream(), []domain.Event{rec})
	if errors.Is(err, eventstore.ErrConflict) {
		first, ok, rerr := p.RecordedResponse(ctx, who, key)
		if rerr != nil || !ok {
			return nil, false, fmt.Errorf("record idempotent response: %w", err)
		}
		return first, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("record idempotent response: %w", err)
	}
	return rec, true, nil
}
