package sealed

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/eventstore"
)

// Store is an eventstore.Store whose events' content is sealed in the
// inner store and opened on every read.
type Store struct {
	inner  eventstore.Store
	sealer *Sealer
}

var _ eventstore.Store = (*Store)(nil)

// New returns inner with content sealed by sealer.
func New(inner eventstore.Store, sealer *Sealer) *Store {
	return &Store{inner: inner, sealer: sealer}
}

// Inner is the store holding the sealed form, for those that must carry
// or check it as stored: the relay to the bus, the hash chain.
func (s *Store) Inner() eventstore.Store { return s.inner }

// Sealer is the store's sealer, for consumers that open what the relay
// published.
func (s *Store) Sealer() *Sealer { return s.sealer }

// seal returns a copy of events with content sealed. An event without an
// id gets one here, since the id is bound into its sealed values.
func (s *Store) seal(ctx context.Context, events []eventstore.NewEvent) ([]eventstore.NewEvent, error) {
	out := make([]eventstore.NewEvent, len(events))
	for i, e := range events {
		if e.ID == [16]byte{} {
			e.ID = eventstore.NewEventID()
		}
		data, err := s.sealer.Seal(ctx, e.OrgID, e.ID, e.Type, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		e.Data = data
		out[i] = e
	}
	return out, nil
}

// Append implements [eventstore.Store.Append].
func (s *Store) Append(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	// The inner store validates; sealing first would hide an org mismatch
	// behind a key of the wrong organization.
	// The data is checked to be JSON by Seal, whose walk reads it all,
	// and the sealed data again by the inner store.
	if err := eventstore.ValidateAppendExceptData(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	sealed, err := s.seal(ctx, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return s.inner.Append(ctx, stream, expected, sealed)
}

// AppendIf implements [eventstore.Store.AppendIf].
func (s *Store) AppendIf(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, cond eventstore.Condition, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	// The data is checked to be JSON by Seal, whose walk reads it all,
	// and the sealed data again by the inner store.
	if err := eventstore.ValidateAppendExceptData(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	sealed, err := s.seal(ctx, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return s.inner.AppendIf(ctx, stream, expected, cond, sealed)
}

func (s *Store) open(ctx context.Context, envs []eventstore.Envelope) ([]eventstore.Envelope, error) {
	for i := range envs {
		var err error
		if envs[i], err = s.sealer.Open(ctx, envs[i]); err != nil {
			return nil, err
		}
	}
	return envs, nil
}

// ReadStream implements [eventstore.Store.ReadStream].
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamName, from uint64, limit int) ([]eventstore.Envelope, error) {
	envs, err := s.inner.ReadStream(ctx, stream, from, limit)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, envs)
}

// ReadAll implements [eventstore.Store.ReadAll].
func (s *Store) ReadAll(ctx context.Context, after uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, error) {
	envs, err := s.inner.ReadAll(ctx, after, filter, limit)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, envs)
}

// Subscribe implements [eventstore.Store.Subscribe].
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handle func(eventstore.Envelope) error) error {
	return s.inner.Subscribe(ctx, after, filter, func(env eventstore.Envelope) error {
		env, err := s.sealer.Open(ctx, env)
		if err != nil {
			return err
		}
		return handle(env)
	})
}

// Head implements [eventstore.Store.Head].
func (s *Store) Head(ctx context.Context) (uint64, error) { return s.inner.Head(ctx) }

// Close closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }
