package conversation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/eventstore"
)

// OpenTurns follows which turns have started and not ended. Turns run in
// the request that asked, so a turn still open once the log has been read
// at start belongs to a server that stopped under it: nothing will finish
// it. Its projection lives in memory and is rebuilt in full at start (give
// it checkpoints that start at zero), or caught up from a snapshot of State
// put back with Restore.
type OpenTurns struct {
	mu   sync.Mutex
	open map[openTurn]turnOrigin
}

// turnOrigin is what the failure of an interrupted turn carries on: the
// correlation of the request that started it, caused by its TurnStarted;
// and when it started.
type turnOrigin struct {
	correlationID, startedID, traceID string
	startedAt                         time.Time
}

type openTurn struct {
	orgID, conversationID, turnID string
}

// NewOpenTurns returns an empty tracker.
func NewOpenTurns() *OpenTurns { return &OpenTurns{open: map[openTurn]turnOrigin{}} }

// Projection is the read model group that keeps the tracker.
func (o *OpenTurns) Projection() *consumer.Group {
	set := o.set
	return &consumer.Group{Name: "open-turns", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *conversations.TurnStarted) error {
			set(env, e.TurnID, true)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *conversations.AnswerRecorded) error {
			set(env, e.TurnID, false)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *conversations.TurnFailed) error {
			set(env, e.TurnID, false)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *conversations.TurnCancelled) error {
			set(env, e.TurnID, false)
			return nil
		}),
	}}
}

// set records turnID of env's conversation as open (with where it came
// from) or ended.
func (o *OpenTurns) set(env eventstore.Envelope, turnID string, open bool) {
	k := openTurn{orgID: env.OrgID, conversationID: env.Stream.EntityID, turnID: turnID}
	o.mu.Lock()
	defer o.mu.Unlock()
	if open {
		o.open[k] = turnOrigin{correlationID: env.CorrelationID, startedID: env.ID.String(), traceID: env.TraceID, startedAt: env.OccurredAt}
	} else {
		delete(o.open, k)
	}
}

// InterruptedReason is what a turn failed at start records.
const InterruptedReason = "interrupted: the server stopped during the turn"

// FailInterrupted records every open turn as failed, as the process
// principal "turn-recovery" of its organization. Call it once the read
// models have been rebuilt and before the server takes requests: with one
// replica, no turn can be running then. It returns how many turns it
// failed. Each failure carries the correlation of the request that
// started the turn, caused by its TurnStarted, so that the turn's narrative
// ends with it.
func (o *OpenTurns) FailInterrupted(ctx context.Context, record Recorder) (int, error) {
	return o.fail(ctx, record, func(turnOrigin) bool { return true })
}

// FailStartedBefore records as failed, as FailInterrupted does, every open
// turn that started before cutoff. With several replicas a turn runs on
// the one that took its request, and no turn runs longer than the turn
// timeout: one still open well past it lost its replica. The replica
// elected for recovery calls it with cutoff = now - timeout - a margin.
func (o *OpenTurns) FailStartedBefore(ctx context.Context, record Recorder, cutoff time.Time) (int, error) {
	return o.fail(ctx, record, func(t turnOrigin) bool { return t.startedAt.Before(cutoff) })
}

func (o *OpenTurns) fail(ctx context.Context, record Recorder, match func(turnOrigin) bool) (int, error) {
	o.mu.Lock()
	turns := make([]openTurn, 0, len(o.open))
	origins := make(map[openTurn]turnOrigin, len(o.open))
	for k, origin := range o.open {
		if !match(origin) {
			continue
		}
		turns = append(turns, k)
		origins[k] = origin
	}
	o.mu.Unlock()
	sort.Slice(turns, func(i, j int) bool { return turns[i].turnID < turns[j].turnID })
	var errs []error
	failed := 0
	for _, k := range turns {
		who := access.Principal{Subject: "turn-recovery", Kind: access.KindProcess, OrgID: k.orgID}
		origin := origins[k]
		ctx := commands.WithOrigin(ctx, commands.Origin{CorrelationID: origin.correlationID, CausationID: origin.startedID, TraceID: origin.traceID})
		_, err := record.RecordTurn(ctx, who, access.Decision{}, k.conversationID,
			&conversations.TurnFailed{TurnID: k.turnID, Reason: InterruptedReason})
		if err != nil {
			errs = append(errs, fmt.Errorf("conversation %s, turn %s: %w", k.conversationID, k.turnID, err))
			continue
		}
		failed++
	}
	return failed, errors.Join(errs...)
}

// OpenTurn is a turn started and not ended, as a snapshot of the tracker
// keeps it.
type OpenTurn struct {
	OrgID, ConversationID, TurnID     string
	CorrelationID, StartedID, TraceID string
	StartedAt                         time.Time
}

// State returns the open turns, for a snapshot of the in-memory groups.
func (o *OpenTurns) State() []OpenTurn {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]OpenTurn, 0, len(o.open))
	for k, origin := range o.open {
		out = append(out, OpenTurn{OrgID: k.orgID, ConversationID: k.conversationID, TurnID: k.turnID,
			CorrelationID: origin.correlationID, StartedID: origin.startedID, TraceID: origin.traceID, StartedAt: origin.startedAt})
	}
	return out
}

// Restore puts back what State returned.
func (o *OpenTurns) Restore(turns []OpenTurn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range turns {
		o.open[openTurn{orgID: t.OrgID, conversationID: t.ConversationID, turnID: t.TurnID}] =
			turnOrigin{correlationID: t.CorrelationID, startedID: t.StartedID, traceID: t.TraceID, startedAt: t.StartedAt}
	}
}
