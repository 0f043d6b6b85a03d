// Package consumer is the runtime that every consumer of the log shares:
// the Engine that catches a Group up from the log at start and then feeds
// it live through Watermill's cqrs event group processor (each event is
// acknowledged once queued in its group's applier, which runs cqrs's
// dispatch to the group's handler for the event's type and applies what
// piled up in batches, one unit of work each), the Handler of
// one event type (On, OnEvery), the Checkpoints port that keeps each
// group's position, the Tracker that lets callers wait for a position, and
// ProcessCheckpoints for processes.
//
// A Group is either a read model's projection (Kind ReadModel) or a
// process (Kind Process). The consistency wait of commands (Engine.WaitFor)
// covers read models only: processes report through the events they
// record, and a slow one never delays a command's answer.
//
// It must never know what a read model or a process does: no domain rule,
// no read model, no command lives here, and it imports neither the query
// side (projections) nor the write side (commands). It applies each event
// at most once per group (positions) and never reorders a group's events.
//
// Where things are: engine.go holds the Engine (rebuild, follow, attach,
// positions and the waits on them), applier.go a group's batches,
// handlers.go the Handler kinds and how cqrs names and decodes their
// events, checkpoints.go the Checkpoints port and ProcessCheckpoints,
// tracing.go the spans of what a group applies from the bus, and
// tracker.go the positions callers wait for.
package consumer
