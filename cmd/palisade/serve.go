package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/projections/postgres"
	"github.com/palisadehq/palisade/sealing"
)

// trustFlag collects --trust-jwks ISSUER=URL values.
type trustFlag []app.TrustedJWKS

func (t *trustFlag) String() string { return fmt.Sprint(*t) }

func (t *trustFlag) Set(v string) error {
	for _, item := range strings.Split(v, ";") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		iss, url, ok := strings.Cut(item, "=")
		if !ok || iss == "" || url == "" {
			return fmt.Errorf("want ISSUER=JWKS_URL, got %q", item)
		}
		*t = append(*t, app.TrustedJWKS{Issuer: iss, URL: url, Algorithms: []string{"RS256", "ES256", "EdDSA"}})
	}
	return nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "directory of the event log and issuer key (PALISADE_DATA_DIR)")
	addr := fs.String("addr", env("PALISADE_ADDR", "127.0.0.1:8080"), "HOST:PORT to listen on (PALISADE_ADDR)")
	metricsAddr := fs.String("metrics-addr", env("PALISADE_METRICS_ADDR", ""), "HOST:PORT to serve /metrics on, alone; then the API's address does not serve it. Empty keeps /metrics on --addr (PALISADE_METRICS_ADDR)")
	accessLog := fs.String("access-log", env("PALISADE_ACCESS_LOG", "auto"), "one line per request on stderr: text, json, off, or auto (text on a terminal, json otherwise) (PALISADE_ACCESS_LOG)")
	issuer := fs.String("issuer", env("PALISADE_ISSUER", app.DefaultIssuer), "iss of the built-in issuer (PALISADE_ISSUER)")
	audience := fs.String("audience", env("PALISADE_AUDIENCE", app.DefaultAudience), "aud every token must carry (PALISADE_AUDIENCE)")
	issuerKeys := fs.String("issuer-keys", env("PALISADE_ISSUER_KEYS", ""), "JWK Set file of the built-in issuer's Ed25519 keys, shared by every replica (palisade issuer-keys generate); empty keeps one key in the data directory (PALISADE_ISSUER_KEYS)")
	signingKID := fs.String("issuer-signing-kid", env("PALISADE_ISSUER_SIGNING_KID", ""), "kid of the --issuer-keys key that signs; empty is the file's first, and follows the file (PALISADE_ISSUER_SIGNING_KID)")
	issuerKeysPoll := fs.String("issuer-keys-poll", env("PALISADE_ISSUER_KEYS_POLL", app.DefaultIssuerKeysPoll.String()), "how often the --issuer-keys file is read again, so that a rotation needs no restart; 0 reads it again only on SIGHUP (PALISADE_ISSUER_KEYS_POLL)")
	logLevel, err := logLevelFlag(fs, "debug, info, warn or error (PALISADE_LOG_LEVEL)")
	if err != nil {
		return err
	}
	pgURL := fs.String("postgres-url", env("PALISADE_POSTGRES_URL", ""), "keep read models in PostgreSQL, connecting as the application role (PALISADE_POSTGRES_URL)")
	pgOwnerURL := fs.String("postgres-owner-url", env("PALISADE_POSTGRES_OWNER_URL", ""), "run read-model migrations at start as this owner role (PALISADE_POSTGRES_OWNER_URL)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty keeps the log in the data directory (PALISADE_EVENTSTORE_URL)")
	kafkaBrokers := fs.String("kafka-brokers", env("PALISADE_KAFKA_BROKERS", ""), "comma-separated Kafka brokers: carry the log over Kafka instead of in process (PALISADE_KAFKA_BROKERS)")
	topicPerOrg := fs.Bool("kafka-topic-per-org", env("PALISADE_KAFKA_TOPIC_PER_ORG", "") == "true", "prefix downstream category topics with the org, for per-org ACLs (PALISADE_KAFKA_TOPIC_PER_ORG=true)")
	kafkaContent := fs.Bool("kafka-content", envBool("PALISADE_KAFKA_CONTENT"), "publish content fields (document text, chunk text, search queries, …) on the downstream category topics instead of their sha256 and size (PALISADE_KAFKA_CONTENT=1)")
	embURL := fs.String("embeddings-url", env("PALISADE_EMBEDDINGS_URL", ""), "OpenAI-compatible embeddings endpoint; empty uses the built-in hashing embedder (PALISADE_EMBEDDINGS_URL)")
	embModel := fs.String("embeddings-model", env("PALISADE_EMBEDDINGS_MODEL", ""), "model the endpoint serves; it must return 384 dimensions (PALISADE_EMBEDDINGS_MODEL)")
	llmURL := fs.String("llm-url", env("PALISADE_LLM_URL", ""), "OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp); empty uses the built-in extractive model (PALISADE_LLM_URL)")
	llmModel := fs.String("llm-model", env("PALISADE_LLM_MODEL", ""), "chat model the endpoint serves (PALISADE_LLM_MODEL)")
	turnTimeoutFlag := fs.String("turn-timeout", env("PALISADE_TURN_TIMEOUT", "60s"), "wall time of one bot turn, at least 1s (PALISADE_TURN_TIMEOUT)")
	sqliteRoot := fs.String("sqlite-root", env("PALISADE_SQLITE_ROOT", ""), "directory SQLite data sources are files under, each organization's in <root>/<org id>/, opened read-only; empty is <data-dir>/sqlite (PALISADE_SQLITE_ROOT)")
	allowedNetworks := fs.String("datasource-allowed-networks", env("PALISADE_DATASOURCE_ALLOWED_NETWORKS", ""), "comma-separated CIDRs data sources may connect to; empty is every address but loopback and this deployment's own services; link-local (cloud metadata) is always refused (PALISADE_DATASOURCE_ALLOWED_NETWORKS)")
	pgSchema := fs.String("postgres-schema", env("PALISADE_POSTGRES_SCHEMA", ""), "schema of the read models; empty is public (PALISADE_POSTGRES_SCHEMA)")
	orgIndexInterval := fs.String("org-index-interval", env("PALISADE_ORG_INDEX_INTERVAL", app.DefaultOrganizationIndexInterval.String()), "with --postgres-owner-url: how often organizations of at least --org-index-min chunks get an HNSW index of their own (and those that shrank below half lose it), first at start; 0 never (PALISADE_ORG_INDEX_INTERVAL)")
	orgIndexMin := fs.Int("org-index-min", envInt("PALISADE_ORG_INDEX_MIN", postgres.DefaultOrganizationIndexMin), "fewest chunks that earn an organization indexes of its own (an HNSW graph and a keyword index), at least 2 (PALISADE_ORG_INDEX_MIN)")
	// A flag only, never the environment: an emptied read-model database
	// should be an operator's decision of the moment, not a setting left on.
	rebuildReadModels := fs.Bool("rebuild-read-models", false, "when the PostgreSQL read models were built from another event log or are ahead of this one (start is refused otherwise), empty them and rebuild them from this log; needs --postgres-owner-url. Read models of this log are kept")
	limits := addLimitFlags(fs)
	analyticsWorkers := fs.Int("analytics-workers", envInt("PALISADE_ANALYTICS_WORKERS", 4), "analytics jobs run at once (PALISADE_ANALYTICS_WORKERS)")
	ingestionWorkers := fs.Int("ingestion-workers", envInt("PALISADE_INGESTION_WORKERS", 4), "document ingestions run at once (PALISADE_INGESTION_WORKERS)")
	ingestionPerOrg := fs.Int("ingestion-per-org", envInt("PALISADE_INGESTION_PER_ORG", 2), "document ingestions of one organization run at once, at most --ingestion-workers; the pool serves organizations in turn (PALISADE_INGESTION_PER_ORG)")
	analyticsTimeout := fs.String("analytics-timeout", env("PALISADE_ANALYTICS_TIMEOUT", "30s"), "time limit of one analytics query, at least 100ms (PALISADE_ANALYTICS_TIMEOUT)")
	var trusted trustFlag
	if v := env("PALISADE_TRUSTED_JWKS", ""); v != "" {
		if err := trusted.Set(v); err != nil {
			return fmt.Errorf("PALISADE_TRUSTED_JWKS: %w", err)
		}
	}
	fs.Var(&trusted, "trust-jwks", "trust an external issuer: ISSUER=JWKS_URL (repeatable; PALISADE_TRUSTED_JWKS, ';'-separated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	quotas, pdfParsers, denialWindow, err := limits.parse()
	if err != nil {
		return err
	}
	keysPoll, err := time.ParseDuration(*issuerKeysPoll)
	if err != nil || keysPoll < 0 || (keysPoll > 0 && keysPoll < 100*time.Millisecond) {
		return fmt.Errorf("--issuer-keys-poll: want 0 or a duration of at least 100ms, got %q", *issuerKeysPoll)
	}
	if keysPoll == 0 {
		keysPoll = -1 // app.Config: negative is never
	}
	turnTimeout, err := time.ParseDuration(*turnTimeoutFlag)
	if err != nil || turnTimeout < time.Second {
		return fmt.Errorf("--turn-timeout: want a duration of at least 1s, got %q", *turnTimeoutFlag)
	}
	queryTimeout, err := time.ParseDuration(*analyticsTimeout)
	if err != nil || queryTimeout < 100*time.Millisecond {
		return fmt.Errorf("--analytics-timeout: want a duration of at least 100ms, got %q", *analyticsTimeout)
	}
	indexInterval, err := time.ParseDuration(*orgIndexInterval)
	if err != nil || indexInterval < 0 || (indexInterval > 0 && indexInterval < time.Second) {
		return fmt.Errorf("--org-index-interval: want 0 or a duration of at least 1s, got %q", *orgIndexInterval)
	}
	if indexInterval == 0 {
		indexInterval = -1 // app.Config: negative is never
	}
	if *orgIndexMin < 2 {
		return fmt.Errorf("--org-index-min: want at least 2 chunks, got %d", *orgIndexMin)
	}
	if *analyticsWorkers < 1 || *analyticsWorkers > 256 {
		return fmt.Errorf("--analytics-workers: want 1 to 256, got %d", *analyticsWorkers)
	}
	if *ingestionWorkers < 1 || *ingestionWorkers > 256 {
		return fmt.Errorf("--ingestion-workers: want 1 to 256, got %d", *ingestionWorkers)
	}
	if *ingestionPerOrg < 1 || *ingestionPerOrg > *ingestionWorkers {
		return fmt.Errorf("--ingestion-per-org: want 1 to --ingestion-workers (%d), got %d", *ingestionWorkers, *ingestionPerOrg)
	}
	access, err := newAccessLog(stderr, *accessLog)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, logLevel)
	// The addresses are bound before the log is opened and the read models
	// rebuilt, so that one in use fails now, not after a long rebuild.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr %s: cannot listen: %w", *addr, err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if *metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", *metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %s: cannot listen: %w", *metricsAddr, err)
		}
		defer metricsLn.Close()
	}
	// Tracing is off unless OTEL_TRACES_EXPORTER asks for it.
	tracing, err := app.TracingFromEnv(ctx, os.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(flush); err != nil {
			logger.Warn("flush the spans not yet exported", "err", err)
		}
	}()
	// SIGHUP reads the key set file again. Caught from before the start
	// (one during the rebuild is handled after it), and only with a key
	// set file: without one, SIGHUP keeps its default and ends the process.
	var hup chan os.Signal
	if *issuerKeys != "" {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	a, err := app.Open(ctx, app.Config{
		AccessLog: access, MetricsElsewhere: metricsLn != nil,
		DataDir: *dataDir, Issuer: *issuer, Audience: *audience, TrustedJWKS: trusted, Logger: logger,
		IssuerKeys: *issuerKeys, IssuerSigningKID: *signingKID, IssuerKeysPoll: keysPoll,
		PostgresURL: *pgURL, PostgresOwnerURL: *pgOwnerURL, PostgresSchema: *pgSchema,
		OrganizationIndexInterval: indexInterval, OrganizationIndexMin: *orgIndexMin,
		RebuildReadModels: *rebuildReadModels,
		// The API key is read from the environment only, never a flag, so
		// it does not show in process listings.
		EventStoreURL: *eventStoreURL,
		KafkaBrokers:  splitList(*kafkaBrokers), KafkaTopicPerOrg: *topicPerOrg, KafkaContent: *kafkaContent,
		Embeddings:  app.EmbeddingsConfig{URL: *embURL, Model: *embModel, APIKey: env("PALISADE_EMBEDDINGS_API_KEY", "")},
		LLM:         app.LLMConfig{URL: *llmURL, Model: *llmModel, APIKey: env("PALISADE_LLM_API_KEY", "")},
		TurnTimeout: turnTimeout,
		// Uploaded PDFs are read by this binary's extract-pdf command, one
		// child process each, so that a crafted PDF cannot crash the server.
		PDFCommand: pdfCommand(),
		Quotas:     quotas, PDFParsers: pdfParsers, DenialWindow: denialWindow,
		// The master key is read from the environment only, never a flag.
		MasterKey:  sealing.NewSecret(env("PALISADE_MASTER_KEY", "")),
		SQLiteRoot: *sqliteRoot, DataSourceNetworks: *allowedNetworks,
		Analytics:      app.AnalyticsConfig{Workers: *analyticsWorkers, Timeout: queryTimeout},
		Ingestion:      app.IngestionConfig{Workers: *ingestionWorkers, PerOrg: *ingestionPerOrg},
		TracerProvider: tracing.Provider,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	attrs := []any{"addr", ln.Addr().String(), "data_dir", *dataDir}
	if metricsLn != nil {
		attrs = append(attrs, "metrics_addr", metricsLn.Addr().String())
	}
	attrs = append(attrs, "signing_kid", a.Issuer.KeyID())
	logger.Info("palisade listening", attrs...)
	if hup != nil {
		done := make(chan struct{})
		defer close(done)
		go reloadOnHangup(a, hup, done)
	}
	return a.Serve(ctx, ln, metricsLn)
}

// reloadOnHangup reads the issuer key set file again on each SIGHUP, as
// daemons reread their configuration, until done is closed.
func reloadOnHangup(a *app.App, hup <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-hup:
			_, _ = a.ReloadIssuerKeys() // logged by the app, changed or refused
		}
	}
}

// newAccessLog returns the access log --access-log asks for on w, or nil
// for off; auto is text when w is a terminal, JSON otherwise.
func newAccessLog(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "off":
		return nil, nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "auto":
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return slog.New(slog.NewTextHandler(w, nil)), nil
			}
		}
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--access-log: want text, json, off or auto, got %q", format)
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// envInt returns the integer in the environment variable name, or def
// when it is unset or not an integer (the flag's check then reports it).
func envInt(name string, def int) int {
	v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
	if err != nil {
		return -1
	}
	return v
}
