// Package app wires Palisade's parts into one running server for a given
// configuration: the event store, identity, read models and projections,
// the Watermill bus with the relay, the [Application] (every use case:
// commands and queries) and the HTTP API it is handed to. cmd/palisade and
// the end-to-end tests start Palisade through it, so both run the same code;
// offline tools (palisade audit replay) open the configured event log alone
// through OpenStore, the same way.
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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/bus/fanout"
	"github.com/palisadehq/palisade/cluster"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/esdb"
	"github.com/palisadehq/palisade/eventstore/sealed"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/projections/postgres"
	"github.com/palisadehq/palisade/quota"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
	"github.com/palisadehq/palisade/tracing"
)

// Config is everything that selects and tunes Palisade's parts.
type Config struct {
	// DataDir holds the event log and the built-in issuer's key (unless
	// IssuerKeys names a key set).
	DataDir string
	// IssuerKeys, when set, is the path of a JWK Set file of Ed25519
	// private keys (palisade issuer-keys) the built-in issuer uses instead
	// of the data directory's key: every replica given the same file mints
	// and verifies the same tokens. IssuerSigningKID names the key that
	// signs (the file's first when empty); every key verifies and is in the
	// JWKS. The file is read again every IssuerKeysPoll
	// (DefaultIssuerKeysPoll when zero; never when negative) and on
	// ReloadIssuerKeys: a changed set replaces the keys in use without a
	// restart, a set that cannot be used is logged and leaves them.
	IssuerKeys       string
	IssuerSigningKID string
	IssuerKeysPoll   time.Duration
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
	// OrganizationIndexInterval is how often a replica with the owner
	// role's URL gives the organizations that have grown large an HNSW
	// index of their own, and drops those of organizations that shrank
	// (postgres.IndexOrganizations); the first pass runs at start.
	// DefaultOrganizationIndexInterval if zero; negative is never.
	OrganizationIndexInterval time.Duration
	// OrganizationIndexMin is the fewest chunks that earn an organization
	// its index (postgres.DefaultOrganizationIndexMin if zero).
	OrganizationIndexMin int
	// RebuildReadModels, when the PostgreSQL read models belong to another
	// log or are ahead of this one (which Open otherwise refuses), empties
	// them as the owner role (PostgresOwnerURL is required) and rebuilds
	// them from this log. Read models that belong to the log are kept.
	RebuildReadModels bool
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
	// LLM selects the chat model bots answer with: the built-in extractive
	// model when its URL is empty. Model, when set, is used instead (tests
	// play a scripted or compromised model with it).
	LLM   LLMConfig
	Model llm.Model
	// TurnTimeout is a bot turn's wall time (conversation.DefaultTurnTimeout
	// if zero).
	TurnTimeout time.Duration
	// PDFCommand, when set, is the program and arguments that read uploaded
	// PDFs in a child process, one per document (serve sets it to
	// "palisade extract-pdf"), so that a PDF crafted to crash the parser
	// fails its upload instead of stopping the server. When empty (tests,
	// Palisade embedded as a library) PDFs are read in process, with
	// knowledge/extract's limits but without that protection.
	PDFCommand []string
	// Chunker, when set, replaces the default chunker of the ingestion
	// process (tests use it to make ingestion slow or to count calls).
	Chunker commands.Chunker
	// Quotas are every organization's default limits (a zero field is
	// unlimited); the platform overrides them per organization with
	// PUT /v1/orgs/{id}/quotas. PDFParsers bounds PDF parses running at
	// once across all organizations (0: unlimited).
	Quotas     quota.Limits
	PDFParsers int
	// DenialWindow is how long repeated denials of one principal for one
	// permission are coalesced into one summary event (default one minute).
	DenialWindow time.Duration
	// MasterKey wraps the organizations' data keys, which seal data source
	// passwords (PALISADE_MASTER_KEY: 32 bytes in standard base64). Empty
	// keeps the key in master.key in the data directory, created on first
	// start: fine for the embedded default, but then the key lives beside
	// what it protects.
	MasterKey sealing.Secret
	// SQLiteRoot is the directory SQLite data sources are files under
	// (PALISADE_SQLITE_ROOT); empty is the data directory's sqlite/.
	SQLiteRoot string
	// DataSourceNetworks are the networks data sources may connect to
	// (PALISADE_DATASOURCE_ALLOWED_NETWORKS: comma-separated CIDRs; empty
	// is every address). Link-local addresses are refused whatever it says.
	DataSourceNetworks string
	// SourceTester, when set, replaces the connector to data sources
	// (tests play a database with it).
	SourceTester commands.SourceTester
	// AuthDenialRate and AuthDenialBurst bound the refused credentials
	// recorded one by one per organization and second (default 50, burst
	// 100); the rest are counted in the next record.
	AuthDenialRate  float64
	AuthDenialBurst int
	// Analytics tunes the analytics process (workers, query timeout).
	Analytics AnalyticsConfig
	// Ingestion sizes the ingestion process's pool.
	Ingestion IngestionConfig
	// AuditCheckpointInterval is how often the audit chain checkpoints an
	// organization with new events (chain.EveryInterval, 10 s, if zero).
	AuditCheckpointInterval time.Duration
	Logger                  *slog.Logger
	// AccessLog receives one line per HTTP request; nil writes none
	// (palisade serve writes them to standard error unless told not to).
	AccessLog *slog.Logger
	// MetricsElsewhere leaves /metrics off the API's address: the caller
	// serves MetricsHandler on an address of its own (serve
	// --metrics-addr).
	MetricsElsewhere bool
	// TracerProvider, when set, traces requests, commands, appends,
	// projections, processes, jobs, model and tool calls (TracingFromEnv
	// builds one from OTEL_*; tests hand in an SDK provider with an
	// in-memory exporter). nil: tracing is off.
	TracerProvider trace.TracerProvider
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
	// embeddingsFile holds chunk vectors when the read models are in
	// memory, so that a restart embeds nothing it embedded before.
	embeddingsFile = "embeddings.db"
)

// App is a running Palisade.
type App struct {
	cfg Config
	// Store is the event log with events' content opened: what commands
	// append to and the rebuild reads.
	Store eventstore.Store
	// Log is the same log as stored, content sealed (package
	// eventstore/sealed): what the relay publishes and a hash chain covers.
	Log eventstore.Store
	// keys are the organizations' data keys: they seal events' content
	// and data-source passwords.
	keys *keyring.Keyring
	// sealer opens what the bus carries, for the consumer groups.
	sealer   *sealed.Sealer
	Issuer   *identity.Issuer
	Verifier *identity.Verifier
	Engine   *consumer.Engine
	Pipeline *commands.Pipeline
	// Application is every use case, as HTTP, tools and workflow steps
	// call them.
	Application Application
	// Quotas keeps every organization's limits and usage.
	Quotas   *quota.Book
	Registry *prometheus.Registry
	server   *httpapi.Server
	ops      *opsMetrics
	lag      *lagCollector

	cancel context.CancelFunc
	done   chan error
	router *message.Router
	// inProcessBus carries the log to the groups without Kafka.
	inProcessBus *fanout.PubSub
	closers      []func() error
	// relays counts running relays: publishers close only after them.
	relays sync.WaitGroup
	// maintenance counts running maintenance loops (organization indexes):
	// Close waits for them before it returns.
	maintenance sync.WaitGroup
	// checkpoint opens a durable checkpoint beside the log.
	checkpoint func(name string) eventstore.Checkpoint
	embedder   commands.Embedder
	// vectors is the durable embedding store: the ingestion process
	// writes it, the knowledge projection reads it.
	vectors    embeddingStore
	principals *projections.Principals
	// model is the chat model bots answer with and analytics translates
	// with; sources the data sources' connector.
	model   llm.Model
	sources dataSources
	// processes are the contexts' processes and their pools.
	processes []process
	postgres  *postgres.Store
	rebuilt   uint64
	// snapshot saves and restores the in-memory groups (memory read models
	// only; see snapshot.go); restored is what the start restored.
	snapshot *memorySnapshot
	restored *restoredSnapshot
	// startedFrom is the position the start restored the groups at.
	startedFrom uint64
	// On the shared stack (see replicas.go): the elector of single-active
	// roles, their gauges, this replica's name, and the processes it runs
	// when elected (otherwise the processes are groups of Engine).
	elector   *cluster.Elector
	leaders   *prometheus.GaugeVec
	replicaID string
	workers   []worker
	// terms are the epochs of this replica's terms of the workers' roles
	// it holds now (see termCheckpoint).
	termsMu sync.Mutex
	terms   map[string]uint64
	// logID is the log's identity, as the PostgreSQL read models were
	// claimed for it (claimReadModels).
	logID string
	// kafkaPublisher is the relays' Kafka publisher, when Kafka is on; the
	// audit chain publishes its checkpoints through it too.
	kafkaPublisher message.Publisher
	ready          chan struct{}
	closeErr       error

	// consistency seals consistency tokens under the issuer's keys now;
	// issuerKeys follows the key set file (nil without one).
	consistency *currentSealer
	issuerKeys  *issuerKeyFile
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
		cfg.Logger = defaultLogger()
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
	a.ops, a.lag = newOpsMetrics(a.Registry), newLagCollector(a)

	// One migration of the PostgreSQL schema for everything kept there
	// (read models, and on the replicated stack the data keys, which the
	// keyring opens first).
	if cfg.PostgresURL != "" && cfg.PostgresOwnerURL != "" {
		if err := postgres.Migrate(ctx, cfg.PostgresOwnerURL, cfg.PostgresSchema); err != nil {
			return nil, fmt.Errorf("migrate read models: %w", err)
		}
	}
	if a.keys, err = OpenKeyring(ctx, cfg); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { a.keys.Close(); return nil })
	if err := a.openLog(ctx); err != nil {
		return nil, err
	}
	store := a.Store
	if a.Issuer, err = a.openIssuer(); err != nil {
		return nil, err
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
	a.embedder = timedEmbedder{Embedder: a.embedder, m: a.ops, tracer: tracing.Tracer(cfg.TracerProvider)}
	if err := a.checkEmbeddings(ctx); err != nil {
		return nil, err
	}
	a.Quotas = quota.NewBook(quota.Config{Defaults: cfg.Quotas, PDFParsers: cfg.PDFParsers})
	a.Pipeline = commands.NewPipeline(timedStore{Store: store, m: a.ops}, registry, cfg.Logger,
		commands.WithDenialWindow(cfg.DenialWindow), commands.WithResourceQuotas(a.Quotas), commands.WithObserver(a.ops),
		commands.WithTracerProvider(cfg.TracerProvider), commands.WithDigestKeys(a.keys))
	models, err := a.openReadModels(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.openReplication(); err != nil {
		return nil, err
	}
	// Read models first, then what reads them (principals), then the
	// contexts, whose processes resolve principals: no cycle to break at
	// run time.
	a.principals = projections.NewPrincipals(models.Tenancy).WithBots(models.Bots)
	if a.model = cfg.Model; a.model == nil {
		if a.model, err = newModel(cfg.LLM); err != nil {
			return nil, err
		}
	}
	asm := &assembly{App: a, models: models.ReadModels, registry: registry, inMemory: a.memoryCheckpoints(models), model: a.model}
	if err := a.assemble(ctx, asm); err != nil {
		return nil, err
	}
	a.Engine = consumer.NewEngine(cfg.Logger, models.checkpoints, asm.groups...)
	if models.memory != nil {
		a.snapshot = &memorySnapshot{
			path: filepath.Join(cfg.DataDir, readModelsSnapshot), models: *models.memory, checkpoints: models.memoryCheckpoints,
			quotas: a.Quotas, turns: asm.side.turns, openJobs: asm.side.openJobs, ingestion: asm.side.ingestion,
		}
		for _, g := range asm.groups {
			if g.Checkpoints == consumer.Checkpoints(models.memoryCheckpoints) {
				a.snapshot.groups = append(a.snapshot.groups, g.Name)
			}
		}
		if a.restored != nil {
			a.snapshot.apply(*a.restored)
			a.startedFrom, a.restored = a.restored.at, nil
		}
	}
	// The bus carries the log as stored, content sealed; the groups see it
	// opened, as the rebuild does through a.Store.
	a.Engine.OpenWith(a.sealer)
	a.Engine.TraceWith(cfg.TracerProvider)

	start := time.Now()
	from := a.startedFrom
	if a.rebuilt, err = a.Engine.Rebuild(ctx, store); err != nil {
		return nil, err
	}
	cfg.Logger.Info("read models caught up with the log", "from", from, "position", a.rebuilt, "took", time.Since(start).String())
	for _, f := range asm.rebuilt {
		if err := f(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	// After the rebuild (principals resolve from complete read models),
	// before the bus: every job still open is handed to its pool again.
	// With replicas, the replica elected for each process does.
	if !a.replicated() {
		for _, p := range a.processes {
			a.startPool(ctx, runCtx, p.group.Name, p.pool)
		}
	}

	if err := a.startBus(runCtx); err != nil {
		return nil, err
	}
	if a.replicated() {
		a.startWorkers(runCtx)
	}
	for _, f := range asm.started {
		if err := f(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), a.lag)
	if err := a.startIssuerKeys(runCtx); err != nil {
		return nil, err
	}
	a.startOrganizationIndexes(runCtx)
	a.server = httpapi.NewServer(httpapi.Deps{
		App:              asm.web,
		Routes:           asm.routes,
		Principals:       a.principals,
		Extractor:        newDocumentExtractor(cfg.PDFCommand, a.Quotas),
		Verifier:         a.Verifier,
		Issuers:          a.Verifier,
		JWKS:             a.Issuer.JWKS,
		ReadModels:       a.Engine,
		Consistency:      a.consistency,
		Ready:            a.readiness,
		Registry:         a.Registry,
		MetricsElsewhere: cfg.MetricsElsewhere,
		Logger:           cfg.Logger,
		AccessLog:        cfg.AccessLog,
		ConsistencyWait:  cfg.ConsistencyWait,
		AuthDenialRate:   cfg.AuthDenialRate,
		AuthDenialBurst:  cfg.AuthDenialBurst,
		TurnTimeout:      cfg.TurnTimeout,
		Limits:           a.Quotas,
		TracerProvider:   cfg.TracerProvider,
		// Replicas share the read models' database, and with it the
		// Idempotency-Keys in flight; the embedded default is one process.
		IdempotencyClaims: a.idempotencyClaims(),
	})
	return a, nil
}

// idempotencyClaims are the Idempotency-Keys in flight shared by the
// replicas: in PostgreSQL beside the read models, none without it.
func (a *App) idempotencyClaims() httpapi.IdempotencyClaims {
	if a.postgres == nil {
		return nil
	}
	return a.postgres.IdempotencyClaims()
}

// openLog opens the configured event log and the durable checkpoints
// beside it, in the data directory's SQLite file. With EventStoreDB alone
// the relays' and processes' checkpoints stay there (one per Palisade
// instance); with PostgreSQL read models too, openReplication moves them
// into PostgreSQL, shared by the replicas.
func (a *App) openLog(ctx context.Context) error {
	local, err := openEmbeddedLog(ctx, a.cfg)
	if err != nil {
		return err
	}
	a.checkpoint = local.Checkpoint
	if a.cfg.EventStoreURL == "" {
		a.Log = local
	} else {
		a.closers = append(a.closers, local.Close)
		remote, err := openEventStoreDB(ctx, a.cfg)
		if err != nil {
			return err
		}
		a.Log = remote
	}
	store := sealLog(a.Log, a.keys)
	a.Store, a.sealer = store, store.Sealer()
	return nil
}

func openEmbeddedLog(ctx context.Context, cfg Config) (*embedded.Store, error) {
	store, err := embedded.Open(ctx, filepath.Join(cfg.DataDir, logFile))
	if errors.Is(err, embedded.ErrLocked) {
		return nil, &DataDirInUseError{Dir: cfg.DataDir, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	return store, nil
}

func openEventStoreDB(ctx context.Context, cfg Config) (*esdb.Store, error) {
	store, err := esdb.Open(ctx, cfg.EventStoreURL, esdb.WithLogger(cfg.Logger.With("component", "esdb")))
	if err != nil {
		return nil, fmt.Errorf("open EventStoreDB log: %w", err)
	}
	return store, nil
}

// DataDirInUseError: another process (or another App in this one) has the
// data directory's event log open.
type DataDirInUseError struct {
	Dir string
	Err error
}

func (e *DataDirInUseError) Error() string {
	return fmt.Sprintf("data directory %s is in use by another palisade process; stop it, or give another --data-dir", e.Dir)
}

func (e *DataDirInUseError) Unwrap() error { return e.Err }

func defaultLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(os.Stderr, nil)) }

// MeasureRebuild rebuilds a fresh, throw-away set of read models from the
// whole log and reports how many events it applied and how long it took.
func (a *App) MeasureRebuild(ctx context.Context) (uint64, time.Duration, error) {
	models := newMemoryReadModels(memory.NewModels())
	asm := &assembly{App: a, models: models.ReadModels, registry: events.NewRegistry()}
	engine := consumer.NewEngine(a.cfg.Logger, models.checkpoints, asm.projections()...)
	start := time.Now()
	if _, err := engine.Rebuild(ctx, a.Store); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	head, err := a.Store.Head(ctx)
	return head, took, err
}

// StartedFrom returns the position the read models resumed from when this
// server started: with memory read models, the position of the snapshot
// they were restored from, 0 when they were replayed from the start of the
// log.
func (a *App) StartedFrom() uint64 { return a.startedFrom }

// isReady reports whether Open finished (the groups were caught up).
func (a *App) isReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
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
	if started != nil {
		started(ln.Addr())
	}
	return a.Serve(ctx, ln, nil)
}

// MetricsHandler serves the metrics alone, for an address of their own.
func (a *App) MetricsHandler() http.Handler { return httpapi.MetricsHandler(a.Registry) }

// Serve serves the HTTP API on ln and, when metrics is not nil, the
// metrics on it, until ctx ends; then both shut down gracefully. The
// caller binds the listeners (palisade serve does before the rebuild, so
// that an address in use fails at once).
func (a *App) Serve(ctx context.Context, ln, metrics net.Listener) error {
	servers := []*http.Server{{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}}
	listeners := []net.Listener{ln}
	if metrics != nil {
		servers = append(servers, &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second})
		listeners = append(listeners, metrics)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var served error
	select {
	case served = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{served}
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(shutdown))
	}
	return errors.Join(errs...)
}

// Close stops the relay, the bus (once every handler has returned) and the
// store, in that order.
func (a *App) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	var errs []error
	if a.Pipeline != nil {
		// Summaries of coalesced denials go to the log before it closes.
		errs = append(errs, a.Pipeline.Close())
	}
	if a.router != nil {
		errs = append(errs, a.router.Close())
	}
	if a.Engine != nil {
		// The router's Close can return with a handler still running
		// (see consumer.Engine.Stop); nothing below may run under one.
		a.Engine.Stop()
		if a.isReady() {
			// Every group is stopped: the next start restores from here.
			a.saveSnapshot(context.Background())
		}
	}
	if a.inProcessBus != nil {
		errs = append(errs, a.inProcessBus.Close())
	}
	// The relays stop with the cancelled context; a publisher must not
	// close under a publish in flight.
	a.relays.Wait()
	a.maintenance.Wait()
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
