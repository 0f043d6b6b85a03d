package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/cluster"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Several replicas. On the production stack (the log in EventStoreDB, the
// read models in PostgreSQL) nothing a server answers from is its own, so
// any number of servers may serve the same organizations behind a load
// balancer. What each of them runs:
//
//   - every replica: the HTTP API, the projections into the shared
//     PostgreSQL read models (each event is applied once, whichever replica
//     gets to it first: see postgres.Checkpoints.Advance), and its own
//     in-memory groups (quota book, open turns, open jobs);
//   - one replica at a time, elected by PostgreSQL advisory lock (package
//     cluster): each Kafka relay and each process (ingestion, analytics),
//     from a checkpoint kept in PostgreSQL, so that whichever replica holds
//     the role next resumes where the last one got to, each holder's saves
//     fenced by its term (termCheckpoint).
//
// With the embedded log (one process owns the data directory) there is one
// replica, and it runs everything itself, as before.

// replicaIDFile names this replica, in its data directory, to the Kafka
// consumer groups of its projections.
const replicaIDFile = "replica-id"

// replicated reports whether this server may be one of several: the log
// and the read models are both shared services.
func (a *App) replicated() bool { return a.cfg.EventStoreURL != "" && a.cfg.PostgresURL != "" }

// openReplication, on the production stack, moves the checkpoints of the
// relays and processes into PostgreSQL (positions in this log) and sets
// up the elector that decides which replica runs each of them.
func (a *App) openReplication() error {
	if !a.replicated() {
		return nil
	}
	// claimReadModels read the log's identity when it opened the read models.
	a.terms = map[string]uint64{}
	a.checkpoint = func(name string) eventstore.Checkpoint { return termCheckpoint{a: a, worker: name} }
	var err error
	if a.replicaID, err = loadReplicaID(a.cfg.DataDir); err != nil {
		return err
	}
	namespace := a.cfg.PostgresSchema
	if namespace == "" {
		namespace = "public"
	}
	a.leaders = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "palisade_leader",
		Help: "1 for each single-active role (a Kafka relay, a process) this replica holds now, 0 for those it does not.",
	}, []string{"role"})
	a.Registry.MustRegister(a.leaders)
	a.elector = cluster.NewElector(a.cfg.PostgresURL, namespace, a.cfg.Logger.With("component", "cluster", "replica", a.replicaID),
		cluster.WithObserver(func(role string, held bool) {
			v := 0.0
			if held {
				v = 1
			}
			a.leaders.WithLabelValues(role).Set(v)
		}))
	a.closers = append(a.closers, func() error { a.elector.Close(); return nil })
	if a.cfg.MasterKey.IsZero() {
		// Not refused: one replica with the key of its data directory works.
		a.cfg.Logger.Warn("replicas: no PALISADE_MASTER_KEY; this replica wraps the organizations' data keys with the master key " +
			"of its own data directory, which other replicas do not have: give every replica the same PALISADE_MASTER_KEY")
	}
	a.cfg.Logger.Info("replica on the shared stack: relays and processes run where elected", "replica", a.replicaID, "log_id", a.logID)
	return nil
}

// loadReplicaID reads this replica's name from its data directory, naming
// it on its first start.
func loadReplicaID(dir string) (string, error) {
	path := filepath.Join(dir, replicaIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("replica id: %w", err)
	}
	id := uuid.NewString()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("replica id: %w", err)
	}
	return id, nil
}

// termCheckpoint is a single-active worker's checkpoint in PostgreSQL,
// fenced by this replica's term of the worker's role: it loads the shared
// position, and saves only while this replica's term is the latest
// (postgres.FencedWorkerCheckpoint). The advisory lock says who should run
// a role; a holder learns it lost the lock only at its next check of its
// session, and a pause (or a session the database ended first) can make
// that late. Meanwhile another replica has begun a term; the old holder's
// next save is refused with postgres.ErrFenced, which ends its work
// (engine.Follow and the relay return it), so that it stops at once
// instead of writing on beside the new holder. Checkpoints never move
// back either way (the save keeps the greater position).
type termCheckpoint struct {
	a      *App
	worker string
}

func (c termCheckpoint) Load(ctx context.Context) (uint64, error) {
	return c.a.postgres.WorkerCheckpoint(c.a.logID, c.worker).Load(ctx)
}

func (c termCheckpoint) Save(ctx context.Context, position uint64) error {
	return c.a.postgres.FencedWorkerCheckpoint(c.a.logID, c.worker, c.a.term(c.worker)).Save(ctx, position)
}

// beginTerm begins this replica's term of worker's role, just elected,
// before anything of the role loads its position; the returned end
// closes it (saves are refused after).
func (a *App) beginTerm(ctx context.Context, worker string) (end func(), err error) {
	epoch, err := a.postgres.BeginWorkerTerm(ctx, a.logID, worker)
	if err != nil {
		return nil, err
	}
	a.termsMu.Lock()
	a.terms[worker] = epoch
	a.termsMu.Unlock()
	return func() {
		a.termsMu.Lock()
		delete(a.terms, worker)
		a.termsMu.Unlock()
	}, nil
}

// term is the epoch of this replica's term of worker's role, 0 outside
// one.
func (a *App) term(worker string) uint64 {
	a.termsMu.Lock()
	defer a.termsMu.Unlock()
	return a.terms[worker]
}

// worker is a single-active process: its consumer group, and what runs
// around it while this replica holds its role.
type worker struct {
	group *consumer.Group
	// around, when set, runs the group: it must call follow and return
	// what it returns (the analytics pool starts before and stops after).
	around func(ctx context.Context, follow func(context.Context) error) error
}

// role is a worker's role name, as the elector and the metrics know it.
func (w worker) role() string { return "process." + w.group.Name }

// startWorkers runs each process on the replica elected for it: there it
// follows the log from the process's checkpoint in PostgreSQL, straight
// from the store (no other replica's bus hands it events).
func (a *App) startWorkers(ctx context.Context) {
	for _, w := range a.workers {
		a.leaders.WithLabelValues(w.role()).Set(0)
		a.lag.addWorker(w.group.Name, a.checkpoint(w.group.Name))
		a.relays.Add(1)
		go func() {
			defer a.relays.Done()
			a.elector.Run(ctx, w.role(), func(ctx context.Context) error {
				end, err := a.beginTerm(ctx, w.group.Name)
				if err != nil {
					return err
				}
				defer end()
				follow := func(ctx context.Context) error {
					engine := consumer.NewEngine(a.cfg.Logger, nil, w.group)
					engine.TraceWith(a.cfg.TracerProvider)
					return engine.Follow(ctx, a.Store)
				}
				if w.around != nil {
					return w.around(ctx, follow)
				}
				return follow(ctx)
			})
		}()
	}
}

// startElectedRelays runs each Kafka relay on the replica elected for it,
// from its checkpoint in PostgreSQL, saved every 100 ms and when the role
// ends.
func (a *App) startElectedRelays(ctx context.Context, relays map[string]func(eventstore.Checkpoint) *kafka.Relay) {
	for name, newRelay := range relays {
		a.leaders.WithLabelValues(name).Set(0)
		a.lag.addRelay(name, a.checkpoint(name))
		a.relays.Add(1)
		go func() {
			defer a.relays.Done()
			a.elector.Run(ctx, name, func(ctx context.Context) error {
				end, err := a.beginTerm(ctx, name)
				if err != nil {
					return err
				}
				defer end() // after the flush below
				// A fresh periodic checkpoint per term: the last term's
				// cached position may be behind another replica's.
				checkpoint := kafka.NewPeriodicCheckpoint(a.checkpoint(name), 100*time.Millisecond)
				defer func() { _ = checkpoint.Flush(context.WithoutCancel(ctx)) }()
				return newRelay(checkpoint).Run(ctx)
			})
		}()
	}
}

// turnRecoveryMargin is how long past the turn timeout an open turn is
// left before it is taken for lost: its replica records the timeout
// itself, and clocks differ.
const turnRecoveryMargin = 30 * time.Second

// startTurnRecovery runs, on the replica elected for it, the sweep that
// records as failed the bot turns whose replica died under them: a turn
// runs in its request, never longer than the turn timeout, so one still
// open well past it will not end otherwise.
func (a *App) startTurnRecovery(ctx context.Context, open *conversation.OpenTurns) {
	const role = "process.turn-recovery"
	timeout := a.cfg.TurnTimeout
	if timeout <= 0 {
		timeout = conversation.DefaultTurnTimeout
	}
	every := min(timeout/2, 10*time.Second)
	a.leaders.WithLabelValues(role).Set(0)
	a.relays.Add(1)
	go func() {
		defer a.relays.Done()
		a.elector.Run(ctx, role, func(ctx context.Context) error {
			ticker := time.NewTicker(every)
			defer ticker.Stop()
			for {
				cutoff := time.Now().Add(-timeout - turnRecoveryMargin)
				if n, err := open.FailStartedBefore(ctx, a.Application.Commands.Conversations, cutoff); err != nil && ctx.Err() == nil {
					a.cfg.Logger.Error("recording bot turns lost with their replica", "failed", n, "err", err)
				} else if n > 0 {
					a.cfg.Logger.Warn("bot turns lost with their replica recorded as failed", "turns", n)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-ticker.C:
				}
			}
		})
	}()
}

// keyShredding is, on the replicated stack, the group by which every
// replica destroys the data key of an organization closed on any of them,
// as soon as it sees the close: the replica that closed it destroyed the
// key in PostgreSQL already (or will, recovering at its next start), but
// the others hold a copy in memory that their keyring would otherwise use
// until its recheck. Destroy is idempotent. A read model, so that a read
// made with the close's consistency token waits for it.
func (a *App) keyShredding() *consumer.Group {
	return &consumer.Group{Name: "data-key-shredding", Handlers: []consumer.Handler{
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
			if err := a.keys.Destroy(ctx, env.OrgID); err != nil {
				return fmt.Errorf("destroy the data key of closed organization %s: %w", env.OrgID, err)
			}
			return nil
		}),
	}}
}
