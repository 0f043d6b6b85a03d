package esdb

import (
	"context"
	"errors"
	"fmt"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/palisadehq/palisade/eventstore"
)

// Subscribe implements [eventstore.Store.Subscribe] with a catch-up
// subscription to $all after position after, filtered on the server as
// far as KurrentDB can (see the package documentation) and by
// filter.Match in the client.
//
// KurrentDB delivers history and then live events in log order without a
// gap or a repeat. When the subscription drops, Subscribe subscribes again
// after the last event it received, waiting between attempts (see
// [WithReconnectBackoff]), and skips anything at or before that event, so
// the handler sees each event once, in order.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handle func(eventstore.Envelope) error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	subCtx, done := s.scope(ctx)
	defer done()
	serverFilter := s.serverFilter(filter)
	last := max(after, s.cfg.logStart)
	backoff := s.cfg.backoffMin
	for {
		sub, err := s.subscribeAfter(subCtx, last, serverFilter)
		if err == nil {
			var progressed bool
			progressed, err = s.deliver(sub, &last, filter, handle)
			_ = sub.Close()
			var failed handlerError
			if errors.As(err, &failed) {
				return failed.err
			}
			if progressed {
				backoff = s.cfg.backoffMin
			}
		}
		if stop := s.stopped(ctx); stop != nil {
			return stop
		}
		var bad badEvent
		if permanent(err) || errors.As(err, &bad) {
			return fmt.Errorf("subscribe after %d: %w", last, err)
		}
		s.cfg.logger.Warn("event store: subscription dropped, subscribing again",
			"server", s.server, "after", last, "retry_in", backoff, "error", err)
		if !sleep(subCtx, backoff) {
			return s.stopped(ctx)
		}
		backoff = min(2*backoff, s.cfg.backoffMax)
	}
}

// stopped returns why a subscription must end, if it must.
func (s *Store) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// subscribeAfter starts a subscription to $all after position after (from
// the start for 0). Every record here commits itself, so commit and
// prepare positions are the same.
func (s *Store) subscribeAfter(ctx context.Context, after uint64, filter *esdbclient.SubscriptionFilter) (*esdbclient.Subscription, error) {
	opts := esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: filter}
	if after > 0 {
		opts.From = esdbclient.Position{Commit: after, Prepare: after}
	}
	sub, err := call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) (*esdbclient.Subscription, error) {
		return c.SubscribeToAll(ctx, opts)
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// handlerError carries the handler's error out of deliver.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// badEvent is an event of this store that cannot be read; subscribing
// again would meet it again.
type badEvent struct{ err error }

func (e badEvent) Error() string { return e.err.Error() }
func (e badEvent) Unwrap() error { return e.err }

// deliver hands sub's events to handle until the subscription drops or
// handle fails, advancing *last past every event received. It reports
// whether it received any event.
func (s *Store) deliver(sub *esdbclient.Subscription, last *uint64, filter eventstore.Filter, handle func(eventstore.Envelope) error) (bool, error) {
	progressed := false
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return progressed, ev.SubscriptionDropped.Error
		case ev.EventAppeared == nil:
			continue // caught up, fell behind, checkpoint
		}
		rec := ev.EventAppeared.OriginalEvent()
		position := rec.Position.Commit
		if position <= *last {
			continue
		}
		progressed = true
		stream, ok := s.palisadeStream(rec)
		if !ok {
			*last = position
			continue
		}
		env, err := envelope(rec, stream)
		if err != nil {
			return progressed, badEvent{err}
		}
		*last = position
		if !filter.Match(env) {
			continue
		}
		if err := handle(env); err != nil {
			return progressed, handlerError{err}
		}
	}
}
