// Package app wires Palisade's parts into one running server for a given
// configuration: the event store, identity, read models and projections,
// the Watermill bus with the relay, and the HTTP API. cmd/palisade and the
// end-to-end tests start Palisade through it, so both run the same code.
//
// It owns lifecycles (start order, shutdown order) and nothing else: no
// business rule and no request handling lives here.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/esdb"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/projections/postgres"
)

// Config is everything that selects and tunes Palisade's parts.
type Config struct {
	// DataDir holds the event log and the built-in issuer's key.
	DataDir string
	// Issuer is the built-in issuer's name (the tokens' iss).
	Issuer string
	// Audience is the audience every token must name.
	Audience string
	// TrustedJWKS are external issuers trusted by JWKS URL.
	TrustedJWKS []TrustedJWKS
	// ConsistencyWait bounds how long a command waits for read models.
	ConsistencyWait time.Duration
	// PostgresURL, when set, keeps the read models in PostgreSQL (connected
	// as the application role, which must own nothing and lack BYPASSRLS)
	// instead of memory. PostgresOwnerURL, when set, runs the migrations as
	// the owner role at start. PostgresSchema names the schema ("" is public).
	PostgresURL      string
	PostgresOwnerURL string
	PostgresSchema   string
	// EventStoreURL, when set (esdb://…), keeps the log in EventStoreDB /
	// KurrentDB instead of the embedded SQLite file; the data directory
	// then keeps only local state (checkpoints, the issuer key).
	EventStoreURL string
	// KafkaBrokers, when set, carries the log over Kafka instead of the
	// in-process bus: projections consume the single-partition log topic,
	// downstream systems the per-category topics (per org with
	// KafkaTopicPerOrg).
	KafkaBrokers     []string
	KafkaTopicPerOrg bool
	// KafkaContent puts the content fields of events (document text, chunk
	// text, search queries, bot instructions) on the downstream category
	// topics. Off by default: downstream systems get each content value's
	// SHA-256 and size. The log topic always carries full content, for the
	// projections.
	KafkaContent bool
	// Embeddings selects the embedder of knowledge-base chunks: the built-in
	// hashing embedder when its URL is empty, or any OpenAI-compatible
	// embeddings endpoint.
	Embeddings EmbeddingsConfig
	// PDFCommand, when set, is the program and arguments that read uploaded
	// PDFs in a child process, one per document (serve sets it to
	// "palisade extract-pdf"), so that a PDF crafted to crash the parser
	// fails its upload instead of stopping the server. When empty (tests,
	// Palisade embedded as a library) PDFs are read in process, with
	// knowledge/extract's limits but without that protection.
	PDFCommand []string
	Logger     *slog.Logger
}

// EmbeddingsConfig points at an OpenAI-compatible embeddings endpoint.
type EmbeddingsConfig struct {
	URL        string
	APIKey     string
	Model      string
	Dimensions int
}

// TrustedJWKS is an external token issuer and where its keys are published.
type TrustedJWKS struct {
	Issuer     string
	URL        string
	Algorithms []string
}

// Defaults of the embedded configuration.
const (
	DefaultIssuer   = "palisade"
	DefaultAudience = "palisade"
	busTopic        = "palisade.events"
	logFile         = "events.db"
)

// App is a running Palisade.
type App struct {
	cfg      Config
	Store    eventstore.Store
	Issuer   *identity.Issuer
	Verifier *identity.Verifier
	Engine   *projections.Engine
	Pipeline *commands.Pipeline
	Queries  *projections.Queries
	// Knowledge answers knowledge-base reads and searches.
	Knowledge *projections.KnowledgeQueries
	Registry  *prometheus.Registry
	server    *httpapi.Server

	cancel  context.CancelFunc
	done    chan error
	router  *message.Router
	pubsubs map[string]*gochannel.GoChannel
	closers []func() error
	// relays counts running relays: publishers close only after them.
	relays sync.WaitGroup
	// checkpoint opens a durable checkpoint beside the log.
	checkpoint func(name string) eventstore.Checkpoint
	embedder   projections.Embedder
	principals *projections.Principals
	postgres   *postgres.Store
	rebuilt    uint64
	ready      chan struct{}
	closeErr   error
}

// Open starts Palisade on cfg: it opens the log, rebuilds the read models
// from it, and starts the bus, the projections and the relay. Serve the
// HTTP API with Handler or ListenAndServe; stop everything with Close.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	a := &App{cfg: cfg, Registry: prometheus.NewRegistry(), done: make(chan error, 2), ready: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()

	if err := a.openLog(ctx); err != nil {
		return nil, err
	}
	store := a.Store
	if a.Issuer, err = identity.LoadOrCreateIssuer(cfg.DataDir, cfg.Issuer, cfg.Audience); err != nil {
		return nil, fmt.Errorf("built-in issuer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	trusted := []identity.TrustedIssuer{a.Issuer.Trusted()}
	for _, t := range cfg.TrustedJWKS {
		ti, err := identity.TrustJWKSURL(runCtx, t.Issuer, t.URL, t.Algorithms)
		if err != nil {
			return nil, fmt.Errorf("trust issuer %s: %w", t.Issuer, err)
		}
		trusted = append(trusted, ti)
	}
	if a.Verifier, err = identity.NewVerifier(identity.VerifierConfig{Audience: cfg.Audience, Issuers: trusted}); err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}

	registry := events.NewRegistry()
	if a.embedder, err = newEmbedder(cfg.Embeddings); err != nil {
		return nil, err
	}
	a.Pipeline = commands.NewPipeline(store, registry, cfg.Logger)
	models, err := a.openReadModels(ctx, registry)
	if err != nil {
		return nil, err
	}
	a.Engine = models.engine
	a.Queries = projections.NewQueries(models.tenancy, models.bots, models.audit, a.Pipeline, registry)
	a.Knowledge = projections.NewKnowledgeQueries(models.knowledge, models.chunks, a.embedder, a.Pipeline)

	start := time.Now()
	if a.rebuilt, err = a.Engine.Rebuild(ctx, store); err != nil {
		return nil, err
	}
	cfg.Logger.Info("read models rebuilt from the log", "position", a.rebuilt, "took", time.Since(start).String())

	if err := a.startBus(runCtx); err != nil {
		return nil, err
	}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.server = httpapi.NewServer(httpapi.Deps{
		Commands:        a.Pipeline,
		Queries:         a.Queries,
		Principals:      a.principals,
		Knowledge:       a.Knowledge,
		Extractor:       newDocumentExtractor(cfg.PDFCommand),
		Embedding:       commands.Embedding{Model: a.embedder.Model(), Dimensions: a.embedder.Dimensions()},
		Verifier:        a.Verifier,
		Minter:          a.Issuer,
		JWKS:            a.Issuer.JWKS,
		ReadModels:      a.Engine,
		Ready:           a.readiness,
		Registry:        a.Registry,
		Logger:          cfg.Logger,
		ConsistencyWait: cfg.ConsistencyWait,
	})
	return a, nil
}

// openLog opens the configured event log and the durable checkpoints
// beside it. With EventStoreDB, checkpoints of relays and processes are kept
// in a local file of the data directory (one per Palisade instance).
func (a *App) openLog(ctx context.Context) error {
	local, err := embedded.Open(ctx, filepath.Join(a.cfg.DataDir, logFile))
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
	}
	a.checkpoint = local.Checkpoint
	if a.cfg.EventStoreURL == "" {
		a.Store = local
		return nil
	}
	a.closers = append(a.closers, local.Close)
	remote, err := esdb.Open(ctx, a.cfg.EventStoreURL, esdb.WithLogger(a.cfg.Logger.With("component", "esdb")))
	if err != nil {
		return fmt.Errorf("open EventStoreDB log: %w", err)
	}
	a.Store = remote
	return nil
}

// readModels are the read models, their checkpoints and the engine that
// builds them.
type readModels struct {
	tenancy     projections.TenancyModel
	bots        projections.BotModel
	audit       projections.AuditModel
	checkpoints projections.Checkpoints
	knowledge   projections.KnowledgeModel
	chunks      projections.ChunkModel
	cache       projections.EmbeddingCache
	// processes run with the read models; nil when measuring a rebuild.
	processes []*projections.Projection
	engine    *projections.Engine
}

func newReadModels(logger *slog.Logger, registry *events.Registry, embedder projections.Embedder, m readModels) readModels {
	all := []*projections.Projection{
		projections.TenancyProjection(m.tenancy),
		projections.BotProjection(m.bots),
		projections.AuditProjection(m.audit, registry.Prototypes()),
		projections.KnowledgeProjection(m.knowledge, m.chunks, embedder, m.cache),
	}
	m.engine = projections.NewEngine(logger, m.checkpoints, append(all, m.processes...)...)
	return m
}

func newMemoryReadModels(logger *slog.Logger, registry *events.Registry, embedder projections.Embedder, processes ...*projections.Projection) readModels {
	return newReadModels(logger, registry, embedder, readModels{
		tenancy: memory.NewTenancy(), bots: memory.NewBots(), audit: memory.NewAudit(), checkpoints: memory.NewCheckpoints(),
		knowledge: memory.NewKnowledge(), chunks: memory.NewChunks(), cache: memory.NewEmbeddingCache(),
		processes: processes,
	})
}

// openReadModels opens the configured read models — PostgreSQL (migrated
// first when an owner URL is given) or memory — with the processes that
// run beside them.
func (a *App) openReadModels(ctx context.Context, registry *events.Registry) (readModels, error) {
	// Processes keep their positions beside the log, whatever the read models.
	processCheckpoints := projections.NewProcessCheckpoints(a.checkpoint, 500)
	ingestion := commands.IngestionProcess(a.Pipeline, principalsOf(a), chunkDocument)
	ingestion.Checkpoints = processCheckpoints
	if a.cfg.PostgresURL == "" {
		m := newMemoryReadModels(a.cfg.Logger, registry, a.embedder, ingestion)
		a.principals = projections.NewPrincipals(m.tenancy)
		return m, nil
	}
	if a.cfg.PostgresOwnerURL != "" {
		if err := postgres.Migrate(ctx, a.cfg.PostgresOwnerURL, a.cfg.PostgresSchema); err != nil {
			return readModels{}, fmt.Errorf("migrate read models: %w", err)
		}
	}
	pg, err := postgres.Open(ctx, a.cfg.PostgresURL, a.cfg.PostgresSchema)
	if err != nil {
		return readModels{}, fmt.Errorf("open read models: %w", err)
	}
	a.postgres = pg
	a.principals = projections.NewPrincipals(pg.Tenancy())
	return newReadModels(a.cfg.Logger, registry, a.embedder, readModels{
		tenancy: pg.Tenancy(), bots: pg.Bots(), audit: pg.Audit(), checkpoints: pg.Checkpoints(),
		knowledge: pg.Knowledge(), chunks: pg.Chunks(), cache: pg.EmbeddingCache(),
		processes: []*projections.Projection{ingestion},
	}), nil
}

// MeasureRebuild rebuilds a fresh, throw-away set of read models from the
// whole log and reports how many events it applied and how long it took.
func (a *App) MeasureRebuild(ctx context.Context) (uint64, time.Duration, error) {
	models := newMemoryReadModels(a.cfg.Logger, events.NewRegistry(), a.embedder)
	start := time.Now()
	if _, err := models.engine.Rebuild(ctx, a.Store); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	head, err := a.Store.Head(ctx)
	return head, took, err
}

func (a *App) readiness(ctx context.Context) error {
	select {
	case <-a.ready:
	default:
		return errors.New("starting")
	}
	if _, err := a.Store.Head(ctx); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}

// Handler returns the HTTP API.
func (a *App) Handler() http.Handler { return a.server.Handler() }

// Server returns the HTTP server, for tests that inspect its routes.
func (a *App) Server() *httpapi.Server { return a.server }

// ListenAndServe serves the HTTP API on addr until ctx ends, then shuts
// down gracefully.
func (a *App) ListenAndServe(ctx context.Context, addr string, started func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if started != nil {
		started(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// Close stops the relay, the bus and the store, in that order.
func (a *App) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	var errs []error
	if a.router != nil {
		errs = append(errs, a.router.Close())
	}
	for _, pubsub := range a.pubsubs {
		errs = append(errs, pubsub.Close())
	}
	// The relays stop with the cancelled context; a publisher must not
	// close under a publish in flight.
	a.relays.Wait()
	// Last opened, first closed: the Kafka relays flush their checkpoints
	// into the local store before it closes.
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	if a.postgres != nil {
		a.postgres.Close()
	}
	return errors.Join(errs...)
}
