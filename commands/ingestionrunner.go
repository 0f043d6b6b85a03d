package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Defaults of the ingestion pool.
const (
	DefaultIngestionWorkers = 4
	DefaultIngestionPerOrg  = 2
)

// IngestionRunner is the ingestion process run on a fair pool (a
// [JobQueue]): each added or replaced document version is handed to the
// pool and ingested there as a job (the work of [IngestionProcess]), so a
// slow document, or one organization's hundred, does not hold up another
// organization's ingestion.
//
// Handing a version over is not doing it: the process's checkpoint moves
// past a version still queued or running. What is not done is known from
// the log instead: OpenIngestions follows which versions are added and not
// yet settled (chunked, failed, superseded or deleted), and Resume hands
// them all to the pool again when it starts (at start, or on the replica
// elected for the process), where RunJob resumes or fails each job.
type IngestionRunner struct {
	p         *Pipeline
	actors    ActorResolver
	chunk     Chunker
	embedding ChunkEmbedding
	queue     *JobQueue

	mu   sync.Mutex
	open map[eventstore.StreamName]OpenIngestion
}

// OpenIngestion is a document version added and not yet settled.
type OpenIngestion struct {
	Stream  eventstore.StreamName
	Version int
}

// NewIngestionRunner returns the stopped ingestion process with workers
// workers, at most perOrg of them for one organization (defaults when 0).
func (p *Pipeline) NewIngestionRunner(actors ActorResolver, chunk Chunker, embedding ChunkEmbedding, workers, perOrg int, logger *slog.Logger) *IngestionRunner {
	if workers <= 0 {
		workers = DefaultIngestionWorkers
	}
	if perOrg <= 0 {
		perOrg = DefaultIngestionPerOrg
	}
	if logger == nil {
		logger = p.logger
	}
	r := &IngestionRunner{p: p, actors: actors, chunk: chunk, embedding: embedding, open: map[eventstore.StreamName]OpenIngestion{}}
	r.queue = NewJobQueue(workers, perOrg, logger.With("process", "ingestion"), r.run)
	return r
}

// Start starts the pool; it stops when ctx ends or Stop is called.
func (r *IngestionRunner) Start(ctx context.Context) { r.queue.Start(ctx) }

// Stop cancels the running ingestions (they stay open, resumed by the next
// Resume) and waits for the workers.
func (r *IngestionRunner) Stop() { r.queue.Stop() }

// Queued is how many ingestions wait for a worker.
func (r *IngestionRunner) Queued() int { return r.queue.Queued() }

// Process is the process group: each added or replaced version is handed
// to the pool (nothing while the pool is stopped: Resume hands it over).
func (r *IngestionRunner) Process() *consumer.Group {
	hand := func(env eventstore.Envelope, version int) error {
		r.queue.Enqueue(JobID(env.Stream, strconv.Itoa(version)), env)
		return nil
	}
	return &consumer.Group{Name: "ingestion", Kind: consumer.Process, Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentAdded) error {
			return hand(env, e.Version)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentReplaced) error {
			return hand(env, e.Version)
		}),
	}}
}

// run ingests the version trigger (its DocumentAdded or DocumentReplaced)
// added.
func (r *IngestionRunner) run(ctx context.Context, trigger eventstore.Envelope) error {
	switch trigger.Type {
	case (knowledge.DocumentAdded{}).EventType():
		var e knowledge.DocumentAdded
		if err := json.Unmarshal(trigger.Data, &e); err != nil {
			return fmt.Errorf("ingest %s: %w", trigger.Stream, err)
		}
		return r.p.ingest(ctx, trigger, e.KnowledgeBaseID, e.Version, e.Content, r.actors, r.chunk, r.embedding)
	case (knowledge.DocumentReplaced{}).EventType():
		var e knowledge.DocumentReplaced
		if err := json.Unmarshal(trigger.Data, &e); err != nil {
			return fmt.Errorf("ingest %s: %w", trigger.Stream, err)
		}
		return r.p.ingest(ctx, trigger, "", e.Version, e.Content, r.actors, r.chunk, r.embedding)
	}
	return fmt.Errorf("ingest %s: a %s triggers no ingestion", trigger.Stream, trigger.Type)
}

// OpenIngestions is the group that follows which versions wait for
// ingestion. It lives in memory and must be rebuilt in full at start (give
// it checkpoints that start at zero), or caught up from a snapshot of
// OpenVersions put back with RestoreOpen; Resume reads it.
func (r *IngestionRunner) OpenIngestions() *consumer.Group {
	update := func(f func()) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		f()
		return nil
	}
	settle := func(stream eventstore.StreamName, version int) error {
		return update(func() {
			if o, ok := r.open[stream]; ok && o.Version == version {
				delete(r.open, stream)
			}
		})
	}
	return &consumer.Group{Name: "ingestion-open", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentAdded) error {
			return update(func() { r.open[env.Stream] = OpenIngestion{Stream: env.Stream, Version: e.Version} })
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentReplaced) error {
			return update(func() { r.open[env.Stream] = OpenIngestion{Stream: env.Stream, Version: e.Version} })
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentChunked) error {
			return settle(env.Stream, e.Version)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *knowledge.DocumentIngestionFailed) error {
			return settle(env.Stream, e.Version)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *knowledge.DocumentDeleted) error {
			return update(func() { delete(r.open, env.Stream) })
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
			return update(func() {
				for s := range r.open {
					if s.OrgID == env.OrgID {
						delete(r.open, s)
					}
				}
			})
		}),
	}}
}

// OpenVersions returns the versions waiting for ingestion, for a snapshot
// of the in-memory groups.
func (r *IngestionRunner) OpenVersions() []OpenIngestion {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]OpenIngestion, 0, len(r.open))
	for _, o := range r.open {
		out = append(out, o)
	}
	return out
}

// RestoreOpen puts back what OpenVersions returned.
func (r *IngestionRunner) RestoreOpen(open []OpenIngestion) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range open {
		r.open[o.Stream] = o
	}
}

// Resume hands every version waiting for ingestion to the pool. Call it
// after Start, once the groups have been rebuilt. It returns how many it
// handed over.
func (r *IngestionRunner) Resume(ctx context.Context) (int, error) {
	open := r.OpenVersions()
	var errs []error
	n := 0
	for _, o := range open {
		trigger, err := r.trigger(ctx, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("resume the ingestion of %s version %d: %w", o.Stream, o.Version, err))
			continue
		}
		r.queue.Enqueue(JobID(o.Stream, strconv.Itoa(o.Version)), trigger)
		n++
	}
	return n, errors.Join(errs...)
}

// trigger reads the event that added o's version (the stream is read in
// pages: a document may have many versions).
func (r *IngestionRunner) trigger(ctx context.Context, o OpenIngestion) (eventstore.Envelope, error) {
	const page = 500
	var found *eventstore.Envelope
	for from := uint64(0); ; {
		envs, err := r.p.store.ReadStream(ctx, o.Stream, from, page)
		if err != nil {
			return eventstore.Envelope{}, err
		}
		for i := range envs {
			env := envs[i]
			if env.Type != (knowledge.DocumentAdded{}).EventType() && env.Type != (knowledge.DocumentReplaced{}).EventType() {
				continue
			}
			var version struct {
				Version int `json:"version"`
			}
			if err := json.Unmarshal(env.Data, &version); err != nil {
				return eventstore.Envelope{}, err
			}
			if version.Version == o.Version {
				found = &env
			}
		}
		if len(envs) < page {
			break
		}
		from = envs[len(envs)-1].StreamVersion + 1
	}
	if found == nil {
		return eventstore.Envelope{}, errors.New("the event that added it is not in its stream")
	}
	return *found, nil
}
