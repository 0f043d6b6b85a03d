package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	validatorerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consistency"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/knowledge/embeddings"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/quota"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// oasPublicPaths are the routes served without a token.
var oasPublicPaths = []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/.well-known/jwks.json"}

// oasModel parses the embedded document into an OpenAPI 3 model.
func oasModel(t testing.TB) (libopenapi.Document, *v3.Document) {
	t.Helper()
	doc, err := libopenapi.NewDocument(OpenAPIDocument())
	if err != nil {
		t.Fatalf("parse openapi.json: %v", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the OpenAPI 3 model: %v", err)
	}
	return doc, &model.Model
}

// oasOperation is one documented (path, method).
type oasOperation struct {
	path, method string
	item         *v3.PathItem
	op           *v3.Operation
}

func (o oasOperation) String() string { return o.method + " " + o.path }

func oasOperations(t testing.TB, model *v3.Document) []oasOperation {
	t.Helper()
	if model.Paths == nil || model.Paths.PathItems == nil {
		t.Fatal("the document has no paths")
	}
	var ops []oasOperation
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			ops = append(ops, oasOperation{path: path, method: strings.ToUpper(method), item: item, op: op})
		}
	}
	return ops
}

// oasRoutes walks the server's router and returns every "METHOD template",
// with mux's {name:pattern} variables written as OpenAPI's {name}.
func oasRoutes(t testing.TB, s *Server) []string {
	t.Helper()
	variable := regexp.MustCompile(`\{([^{}:]+)(:[^{}]*)?\}`)
	var routes []string
	err := s.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return fmt.Errorf("route without a path template: %w", err)
		}
		methods, err := route.GetMethods()
		if err != nil {
			// A prefix that only carries a subrouter serves nothing itself.
			if route.GetHandler() != nil {
				return fmt.Errorf("route %s answers every method; give it methods so it can be documented", tpl)
			}
			return nil
		}
		for _, m := range methods {
			routes = append(routes, m+" "+variable.ReplaceAllString(tpl, "{$1}"))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk routes: %v", err)
	}
	slices.Sort(routes)
	return routes
}

func oasBareServer() *Server {
	return NewServer(Deps{
		Routes:   AllRoutes(),
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc, model := oasModel(t)
	if !strings.HasPrefix(model.Version, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", model.Version)
	}
	if model.Info == nil || model.Info.Title == "" || model.Info.Version == "" {
		t.Fatal("info.title and info.version are required")
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("schema: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s", se.Reason)
			}
		}
	}
}

// TestOpenAPIMatchesRoutes holds the document against the real router, in
// both directions: every route is documented and every documented
// operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	_, model := oasModel(t)
	routed := oasRoutes(t, oasBareServer())
	var documented []string
	for _, o := range oasOperations(t, model) {
		documented = append(documented, o.String())
	}
	slices.Sort(documented)
	for _, r := range routed {
		if _, found := slices.BinarySearch(documented, r); !found {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if _, found := slices.BinarySearch(routed, d); !found {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
	if len(routed) == 0 {
		t.Fatal("the router has no routes")
	}
}

func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	_, model := oasModel(t)
	if !slices.ContainsFunc(model.Security, func(r *base.SecurityRequirement) bool {
		return r.Requirements != nil && slices.Contains(slices.Collect(r.Requirements.KeysFromOldest()), "bearerAuth")
	}) {
		t.Error("the document's global security must require bearerAuth")
	}
	if model.Components == nil || model.Components.SecuritySchemes == nil {
		t.Fatal("components.securitySchemes is missing")
	}
	scheme := model.Components.SecuritySchemes.GetOrZero("bearerAuth")
	if scheme == nil || scheme.Type != "http" || scheme.Scheme != "bearer" || scheme.BearerFormat != "JWT" {
		t.Errorf("bearerAuth must be an http bearer JWT scheme, got %+v", scheme)
	}
	pathVariable := regexp.MustCompile(`\{([^{}]+)\}`)
	ids := map[string]string{}
	for _, o := range oasOperations(t, model) {
		t.Run(o.String(), func(t *testing.T) {
			if o.op.OperationId == "" {
				t.Error("no operationId")
			} else if other, dup := ids[o.op.OperationId]; dup {
				t.Errorf("operationId %q is also used by %s", o.op.OperationId, other)
			}
			ids[o.op.OperationId] = o.String()

			if o.op.Responses == nil || o.op.Responses.Codes == nil {
				t.Fatal("no responses")
			}
			codes := slices.Collect(o.op.Responses.Codes.KeysFromOldest())
			if !slices.ContainsFunc(codes, func(c string) bool { return strings.HasPrefix(c, "2") }) {
				t.Errorf("no 2xx response among %v", codes)
			}

			public := slices.Contains(oasPublicPaths, o.path)
			switch {
			case public && (o.op.Security == nil || len(o.op.Security) != 0):
				t.Error("a public route must say security: []")
			case !public && o.op.Security != nil:
				t.Error("an authenticated route must inherit the global bearer requirement")
			case !public && !strings.HasPrefix(o.path, "/v1/"):
				t.Error("only /v1 routes are authenticated; a new public route belongs in oasPublicPaths")
			case !public && !slices.Contains(codes, "401"):
				t.Error("an authenticated route must document 401")
			}

			declared := map[string]bool{}
			for _, p := range slices.Concat(o.item.Parameters, o.op.Parameters) {
				if p.In == "path" {
					if p.Required == nil || !*p.Required {
						t.Errorf("path parameter %s must be required", p.Name)
					}
					declared[p.Name] = true
				}
			}
			for _, m := range pathVariable.FindAllStringSubmatch(o.path, -1) {
				if !declared[m[1]] {
					t.Errorf("path variable {%s} is not a declared path parameter", m[1])
				}
				delete(declared, m[1])
			}
			for name := range declared {
				t.Errorf("path parameter %s is not in the path", name)
			}
		})
	}
}

// oasStack is a real Palisade behind the server: the embedded log, the
// in-memory read models and the built-in issuer. The read models catch up
// synchronously whenever the server waits for them.
type oasStack struct {
	t         *testing.T
	server    *Server
	issuer    *identity.Issuer
	validator validator.Validator
	platform  string
	sealer    *consistency.Sealer
	chainer   *chain.Chainer
}

// oasCatchUp applies the log to the read models on demand.
type oasCatchUp struct {
	store  eventstore.Store
	engine *consumer.Engine
}

func (c oasCatchUp) WaitFor(ctx context.Context, position uint64) error {
	if _, err := c.engine.Rebuild(ctx, c.store); err != nil {
		return err
	}
	if c.engine.Position() < position {
		return fmt.Errorf("read models at %d, not %d", c.engine.Position(), position)
	}
	return nil
}

func (c oasCatchUp) Position() uint64 { return c.engine.Position() }

func oasNewStack(t *testing.T) *oasStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := embedded.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatalf("issuer: %v", err)
	}
	// An external issuer the deployment trusts, for the issuer routes.
	external, err := identity.LoadOrCreateIssuer(t.TempDir(), oasExternalIssuer, "palisade")
	if err != nil {
		t.Fatalf("external issuer: %v", err)
	}
	externalKeys, err := external.JWKS()
	if err != nil {
		t.Fatalf("external JWKS: %v", err)
	}
	trustedExternal, err := identity.TrustJWKSJSON(oasExternalIssuer, externalKeys, []string{"EdDSA"})
	if err != nil {
		t.Fatalf("trust external issuer: %v", err)
	}
	verifier, err := identity.NewVerifier(identity.VerifierConfig{
		Audience: "palisade", Issuers: []identity.TrustedIssuer{issuer.Trusted(), trustedExternal},
	})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	registry := events.NewRegistry()
	tenancy, bots, audit := memory.NewTenancy(), memory.NewBots(), memory.NewAudit()
	bases, chunks := memory.NewKnowledge(), memory.NewChunks()
	embedder := embed.NewHashing(384)
	vectors := embeddings.NewMemory()
	pipeline := commands.NewPipeline(store, registry, logger)
	principals := projections.NewPrincipals(tenancy)
	conversations := memory.NewConversations()
	sources := memory.NewDataSources()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	// Quotas the platform sets reach the book through its projection, as
	// in app; the runner asks it before every turn.
	quotas := quota.NewBook(quota.Config{})
	quotaGroup := quotas.Projection()
	quotaGroup.Checkpoints = memory.NewCheckpoints()
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(),
		projections.TenancyProjection(tenancy),
		projections.BotProjection(bots),
		projections.AuditProjection(audit, registry.Prototypes()),
		projections.KnowledgeProjection(bases, chunks, vectors),
		projections.ConversationProjection(conversations),
		projections.DataSourceProjection(sources),
		quotaGroup,
		// Ingestion appends DocumentChunked while the read models catch up;
		// the next catch-up applies it.
		commands.IngestionProcess(pipeline, principals, oasChunk, commands.ChunkEmbedding{Embedder: embedder, Store: vectors}),
	)
	sealer, err := consistency.NewSealer(issuer.DeriveSecret("consistency tokens"))
	if err != nil {
		t.Fatalf("sealer: %v", err)
	}
	chainRecord, err := chain.OpenRecord(ctx, filepath.Join(dir, chain.RecordFile))
	if err != nil {
		t.Fatalf("audit chain record: %v", err)
	}
	t.Cleanup(func() { _ = chainRecord.Close() })
	jwks, err := issuer.JWKS()
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	chainKeys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		t.Fatalf("audit chain keys: %v", err)
	}
	chainer := chain.NewChainer(store, chainRecord, issuer, nil, logger)
	chainer.Every, chainer.Interval = 10, 0
	cmds := commands.New(pipeline, issuer, commands.Embedding{Model: embedder.Model(), Dimensions: embedder.Dimensions()})
	keys := keyring.NewMemory(master)
	cmds.DataSources = commands.NewDataSources(pipeline, keys, oasDatabases{})
	cmds.Tenancy.WithKeyShredder(keys)
	queries := projections.NewQueries(tenancy, bots, audit, pipeline, registry)
	knowledgeQueries := projections.NewKnowledgeQueries(bases, chunks, embedder, pipeline, cmds.Knowledge)
	tools, err := conversation.NewRegistry(append(conversation.KnowledgeTools(knowledgeQueries, cmds.Conversations),
		conversation.AskBotTool(cmds.Conversations))...)
	if err != nil {
		t.Fatalf("tools: %v", err)
	}
	runner := conversation.NewRunner(conversation.Config{
		Model: &oasTurnModel{}, Tools: tools, Record: cmds.Conversations, Principals: principals, Quotas: quotas, Logger: logger,
	})
	server := NewServer(Deps{
		Routes: AllRoutes(),
		App: Application{
			Commands: Commands{Security: cmds.Security, Tenancy: cmds.Tenancy, Bots: cmds.Bots, Knowledge: cmds.Knowledge,
				Conversations: cmds.Conversations, DataSources: cmds.DataSources},
			Queries: Queries{
				Tenancy: queries, Bots: queries, Audit: queries,
				Stories:       projections.NewAuditStories(queries, projections.NewNarrator(registry)),
				Knowledge:     knowledgeQueries,
				Conversations: projections.NewConversationQueries(conversations, pipeline),
				DataSources:   projections.NewDataSourceQueries(sources, pipeline),
				AuditChain:    chain.NewService(store, chainRecord, chainKeys, pipeline),
				AccessReview:  accessreview.New(store, registry, pipeline),
			},
			Runner: runner,
		},
		Principals:      principals,
		Extractor:       oasExtractor{},
		Verifier:        verifier,
		JWKS:            issuer.JWKS,
		Issuers:         verifier,
		ReadModels:      oasCatchUp{store: store, engine: engine},
		Consistency:     sealer,
		Registry:        prometheus.NewRegistry(),
		Logger:          logger,
		ConsistencyWait: time.Second,
	})
	doc, err := libopenapi.NewDocument(OpenAPIDocument())
	if err != nil {
		t.Fatalf("parse openapi.json: %v", err)
	}
	// The standard body decoders let the validator read multipart uploads.
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithStandardBodyDecoders())
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errors.Join(errs...))
	}
	s := &oasStack{t: t, server: server, issuer: issuer, validator: v, sealer: sealer, chainer: chainer}
	s.platform = s.mint(identity.Claims{Kind: identity.KindPlatform}, "platform-ops")
	return s
}

func (s *oasStack) mint(c identity.Claims, sub string) string {
	s.t.Helper()
	c.Subject = sub
	tok, err := s.issuer.Mint(c, time.Hour)
	if err != nil {
		s.t.Fatalf("mint: %v", err)
	}
	return tok
}

// oasModelDown is a question the test stack's model fails on, once the
// turn's tools have run, as an endpoint that goes down mid-turn would.
const oasModelDown = "What does the handbook say while the model is down?"

// oasTurnModel is the built-in model, but for oasModelDown.
type oasTurnModel struct{ llm.Builtin }

func (m *oasTurnModel) Complete(ctx context.Context, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	asked, toolsRan := "", false
	for _, msg := range req.Messages {
		switch msg.Role {
		case llm.RoleUser:
			asked = msg.Content
		case llm.RoleTool:
			toolsRan = true
		}
	}
	if asked == oasModelDown && toolsRan {
		return llm.Response{}, &llm.StatusError{StatusCode: http.StatusServiceUnavailable}
	}
	return m.Builtin.Complete(ctx, req, onDelta)
}

// oasExternalIssuer is the external issuer the test stack trusts.
const oasExternalIssuer = "https://idp.test"

// oasCall is one request and the status it must answer.
type oasCall struct {
	method, path, token string
	// body is JSON-encoded unless it is a string, sent as is.
	body    any
	headers map[string]string
	want    int
	// invalid marks a request that breaks the document on purpose: the
	// document must refuse it too, and only the response is held against it.
	invalid bool
}

type oasResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r oasResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// do serves c and validates the request (unless c.invalid) and the
// response against the document.
func (s *oasStack) do(c oasCall) oasResponse {
	s.t.Helper()
	var payload []byte
	switch b := c.body.(type) {
	case nil:
	case string:
		payload = []byte(b)
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
	}
	newRequest := func() *http.Request {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req := httptest.NewRequest(c.method, c.path, body)
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		return req
	}
	rec := httptest.NewRecorder()
	s.server.Handler().ServeHTTP(rec, newRequest())
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != c.want {
		s.t.Fatalf("%s %s = %d %s, want %d", c.method, c.path, res.StatusCode, body, c.want)
	}

	var ok bool
	var verrs []*validatorerrors.ValidationError
	if c.invalid {
		// The document must refuse what the server refuses.
		if valid, _ := s.validator.ValidateHttpRequest(newRequest()); valid {
			s.t.Errorf("%s %s: the server answers %d, but the document accepts the request", c.method, c.path, c.want)
		}
		ok, verrs = s.validator.ValidateHttpResponse(newRequest(), oasReplay(res, body))
	} else {
		ok, verrs = s.validator.ValidateHttpRequestResponse(newRequest(), oasReplay(res, body))
	}
	if !ok {
		for _, e := range verrs {
			s.t.Errorf("%s %s (%d): %s: %s", c.method, c.path, res.StatusCode, e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				s.t.Errorf("  %s", se.Reason)
			}
		}
		s.t.Logf("body: %s", body)
	}
	return oasResponse{status: res.StatusCode, header: res.Header, body: body}
}

func oasReplay(res *http.Response, body []byte) *http.Response {
	r := *res
	r.Body = io.NopCloser(bytes.NewReader(body))
	return &r
}

// oasExtractor reads text/plain and text/markdown documents, sent as JSON
// or uploaded as multipart/form-data (a `file` part and an optional
// `title`); every other type is unsupported.
type oasExtractor struct{}

func (oasExtractor) Text(_ context.Context, contentType string, data []byte) (string, error) {
	switch contentType {
	case "text/plain", "text/markdown":
		if !utf8.Valid(data) {
			return "", errors.New("document is not valid UTF-8")
		}
		return string(data), nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnsupportedType, contentType)
}

func (e oasExtractor) Upload(r *http.Request, maxBytes int64) (commands.DocumentInput, error) {
	var in commands.DocumentInput
	mr, err := r.MultipartReader()
	if err != nil {
		return in, err
	}
	var data []byte
	var fileName string
	found := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, err
		}
		b, err := io.ReadAll(io.LimitReader(part, maxBytes+1))
		if err != nil {
			return in, err
		}
		if int64(len(b)) > maxBytes {
			return in, ErrUploadTooLarge
		}
		switch part.FormName() {
		case "title":
			in.Title = string(b)
		case "file":
			data, fileName, found = b, part.FileName(), true
			in.ContentType, _, _ = mime.ParseMediaType(part.Header.Get("Content-Type"))
		}
	}
	if !found {
		return in, errors.New("the upload has no file part")
	}
	if in.Content, err = e.Text(r.Context(), in.ContentType, data); err != nil {
		return in, err
	}
	if in.Title == "" {
		in.Title = fileName
	}
	return in, nil
}

// oasChunk cuts a document into its paragraphs, each under the last
// markdown heading before it.
func oasChunk(text string) []knowledge.Chunk {
	var out []knowledge.Chunk
	heading, start := "", 0
	for _, para := range strings.Split(text, "\n\n") {
		end := start + len(para)
		if p := strings.TrimSpace(para); p != "" {
			if h, ok := strings.CutPrefix(p, "# "); ok {
				heading = h
			}
			out = append(out, knowledge.Chunk{Start: start, End: end, Heading: heading, Text: p})
		}
		start = end + 2
	}
	return out
}

// oasMultipart encodes a document upload: a file part (named field,
// normally "file") of contentType and, unless empty, a title. It returns
// the body and its Content-Type.
func oasMultipart(t testing.TB, title, field, fileName, contentType string, data []byte) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if title != "" {
		if err := w.WriteField("title", title); err != nil {
			t.Fatal(err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, fileName))
	h.Set("Content-Type", contentType)
	part, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), w.FormDataContentType()
}

// oasDocument is what the knowledge tests read back of a document.
type oasDocument struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Version     int    `json:"version"`
	State       string `json:"state"`
	Chunks      int    `json:"chunks"`
	Consistency string `json:"consistency,omitempty"`
}

// awaitIngestion polls a document until its ingestion settled, and
// returns it; each poll lets the read models (and ingestion) catch up.
func (s *oasStack) awaitIngestion(path, token string, consistencyToken string) oasDocument {
	s.t.Helper()
	for range 20 {
		var doc oasDocument
		s.do(oasCall{method: http.MethodGet, path: path + "?consistency=" + consistencyToken, token: token,
			want: http.StatusOK}).decode(s.t, &doc)
		if doc.State != "pending" {
			return doc
		}
	}
	s.t.Fatalf("%s is still pending", path)
	return oasDocument{}
}

// TestOpenAPIDescribesRealResponses drives a real server through every
// route and holds each request and response against the document.
func TestOpenAPIDescribesRealResponses(t *testing.T) {
	t.Parallel()
	s := oasNewStack(t)

	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/.well-known/jwks.json"} {
		s.do(oasCall{method: http.MethodGet, path: path, want: http.StatusOK})
	}

	// Organizations.
	create := oasCall{
		method: http.MethodPost, path: "/v1/orgs", token: s.platform, want: http.StatusCreated,
		body:    map[string]string{"name": "Acme", "owner_sub": "alice"},
		headers: map[string]string{"Idempotency-Key": "create-acme"},
	}
	var org struct{ ID string }
	s.do(create).decode(t, &org)
	if r := s.do(create); r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a replay answered without Idempotent-Replayed")
	}
	s.do(oasCall{method: http.MethodPost, path: "/v1/orgs", token: s.platform, want: http.StatusUnprocessableEntity,
		body:    map[string]string{"name": "Acme Two", "owner_sub": "alice"},
		headers: map[string]string{"Idempotency-Key": "create-acme"}})
	alice := s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "alice")
	s.do(oasCall{method: http.MethodGet, path: "/v1/org", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPost, path: "/v1/orgs", token: alice, want: http.StatusForbidden,
		body: map[string]string{"name": "Mine", "owner_sub": "alice"}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/org", want: http.StatusUnauthorized, invalid: true})

	// Members.
	added := s.do(oasCall{method: http.MethodPost, path: "/v1/members", token: alice, want: http.StatusCreated,
		body: map[string]any{"sub": "bob", "roles": []string{"viewer"}}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/members?limit=1", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/members/bob?consistency=" + added.header.Get(headerConsistency),
		token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPut, path: "/v1/members/bob", token: alice, want: http.StatusOK,
		body: map[string]any{"roles": []string{"builder", "viewer"}}})
	s.do(oasCall{method: http.MethodPut, path: "/v1/members/bob", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"roles": []string{"emperor"}}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/members", token: alice, want: http.StatusConflict,
		body: map[string]any{"sub": "bob", "roles": []string{"viewer"}}})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/members/alice", token: alice, want: http.StatusConflict})
	s.do(oasCall{method: http.MethodGet, path: "/v1/members/nobody", token: alice, want: http.StatusNotFound})

	// External issuers bound to the organization, and their members.
	issuerQuery := "?issuer=" + url.QueryEscape(oasExternalIssuer)
	s.do(oasCall{method: http.MethodPut, path: "/v1/org/issuers" + issuerQuery, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPut, path: "/v1/org/issuers?issuer=" + url.QueryEscape("https://unknown.test"), token: alice,
		want: http.StatusUnprocessableEntity})
	s.do(oasCall{method: http.MethodGet, path: "/v1/org/issuers", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPost, path: "/v1/members", token: alice, want: http.StatusCreated,
		body: map[string]any{"issuer": oasExternalIssuer, "sub": "bob", "roles": []string{"viewer"}}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/members/bob" + issuerQuery, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPut, path: "/v1/members/bob" + issuerQuery, token: alice, want: http.StatusOK,
		body: map[string]any{"roles": []string{"analyst"}}})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/members/bob" + issuerQuery, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/org/issuers" + issuerQuery, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/org/issuers" + issuerQuery, token: alice, want: http.StatusNotFound})

	// Service accounts.
	var sa struct{ ID string }
	s.do(oasCall{method: http.MethodPost, path: "/v1/service-accounts", token: alice, want: http.StatusCreated,
		body: map[string]any{"name": "ci", "permissions": []string{"bots:read"}, "ttl_seconds": 3600}}).decode(t, &sa)
	s.do(oasCall{method: http.MethodGet, path: "/v1/service-accounts", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/service-accounts/" + sa.ID, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: "/v1/service-accounts", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/service-accounts/" + sa.ID, token: alice, want: http.StatusNotFound})

	// Bots.
	var bot struct{ ID string }
	created := s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusCreated,
		body: map[string]any{"name": "Helpdesk", "instructions": "Be kind.\nBe brief.",
			"grants": map[string]any{"tools": []string{"search", "search"}, "permissions": []string{"kb:read"}}},
		headers: map[string]string{"Prefer": "respond-async"}})
	created.decode(t, &bot)
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots/" + bot.ID + "?consistency=" + created.header.Get(headerConsistency),
		token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPatch, path: "/v1/bots/" + bot.ID, token: alice, want: http.StatusOK,
		body: map[string]any{"name": "Front desk", "instructions": nil}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?limit=10", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/bots/" + bot.ID, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?include_archived=true", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPatch, path: "/v1/bots/" + bot.ID, token: alice, want: http.StatusConflict,
		body: map[string]any{"name": "Again"}})

	// Requests the server refuses.
	s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusBadRequest,
		body: map[string]any{"name": "x", "colour": "red"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"name": strings.Repeat("n", 201)}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusUnsupportedMediaType,
		body: `{"name":"x"}`, headers: map[string]string{"Content-Type": "text/plain"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusRequestEntityTooLarge,
		body: `{"name":"` + strings.Repeat("n", MaxBodyBytes) + `"}`, invalid: true})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?limit=0", token: alice, want: http.StatusBadRequest, invalid: true})
	ahead, err := s.sealer.Seal(org.ID, 999999)
	if err != nil {
		t.Fatal(err)
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?consistency=" + ahead, token: alice,
		want: http.StatusServiceUnavailable})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?consistency=garbage", token: alice,
		want: http.StatusBadRequest})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots?min_position=1", token: alice,
		want: http.StatusBadRequest})
	bob := s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "bob")
	s.do(oasCall{method: http.MethodPost, path: "/v1/service-accounts", token: bob, want: http.StatusForbidden,
		body: map[string]any{"name": "ci", "permissions": []string{"audit:read"}}})

	s.do(oasCall{method: http.MethodDelete, path: "/v1/members/bob", token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots", token: bob, want: http.StatusUnauthorized})

	// Another organization's bot answers 404, like one that never existed.
	var other struct{ ID string }
	s.do(oasCall{method: http.MethodPost, path: "/v1/orgs", token: s.platform, want: http.StatusCreated,
		body: map[string]string{"name": "Globex", "owner_sub": "hank"}}).decode(t, &other)
	hank := s.mint(identity.Claims{Kind: identity.KindUser, Org: other.ID}, "hank")
	s.do(oasCall{method: http.MethodGet, path: "/v1/bots/" + bot.ID, token: hank, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/bots/" + bot.ID, token: hank, want: http.StatusNotFound})

	// Knowledge bases: carol builds, dave views, erin is a member.
	for _, m := range []struct{ sub, role string }{{"carol", "builder"}, {"dave", "viewer"}, {"erin", "member"}} {
		s.do(oasCall{method: http.MethodPost, path: "/v1/members", token: alice, want: http.StatusCreated,
			body: map[string]any{"sub": m.sub, "roles": []string{m.role}}})
	}
	carol := s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "carol")
	dave := s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "dave")
	erin := s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "erin")

	var kb struct {
		ID       string `json:"id"`
		Archived bool   `json:"archived"`
	}
	createdKB := s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases", token: alice, want: http.StatusCreated,
		body: map[string]any{"name": "Handbook", "description": "How we work."}})
	createdKB.decode(t, &kb)
	kbPath := "/v1/knowledge-bases/" + kb.ID
	if loc := createdKB.header.Get("Location"); loc != kbPath {
		t.Errorf("Location = %q, want %q", loc, kbPath)
	}
	s.do(oasCall{method: http.MethodGet, path: kbPath + "?consistency=" + createdKB.header.Get(headerConsistency),
		token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPatch, path: kbPath, token: alice, want: http.StatusOK,
		body: map[string]any{"name": nil, "description": "How we work, in writing."}})
	s.do(oasCall{method: http.MethodGet, path: kbPath, token: erin, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"name": ""}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases", token: alice, want: http.StatusBadRequest,
		body: map[string]any{"name": "x", "model": "big"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases", token: dave, want: http.StatusForbidden,
		body: map[string]any{"name": "Mine"}})

	// Grants restrict the base to alice, carol (read only) and viewers.
	s.do(oasCall{method: http.MethodPut, path: kbPath + "/grants", token: alice, want: http.StatusOK,
		body: map[string]any{"grants": []map[string]any{
			{"subject": "user:carol", "permissions": []string{"kb:read"}},
			{"subject": "role:viewer", "permissions": []string{"kb:read"}},
			{"subject": "user:alice", "permissions": []string{"kb:write", "kb:read", "kb:read"}},
		}}})
	s.do(oasCall{method: http.MethodPut, path: kbPath + "/grants", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"grants": []map[string]any{{"subject": "group:staff", "permissions": []string{"kb:read"}}}}, invalid: true})
	s.do(oasCall{method: http.MethodPut, path: kbPath + "/grants", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"grants": []map[string]any{{"subject": "user:carol", "permissions": []string{"kb:manage"}}}}, invalid: true})
	s.do(oasCall{method: http.MethodGet, path: "/v1/knowledge-bases?limit=10", token: dave, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: kbPath, token: carol, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPatch, path: kbPath, token: carol, want: http.StatusForbidden,
		body: map[string]any{"name": "Carol's"}})
	s.do(oasCall{method: http.MethodGet, path: kbPath, token: erin, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodGet, path: kbPath, token: hank, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodDelete, path: kbPath, token: hank, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodGet, path: "/v1/knowledge-bases/nothing-here", token: alice, want: http.StatusNotFound})

	// Documents, as JSON and as uploads.
	leave := map[string]any{"title": "Leave policy", "content_type": "text/markdown",
		"content": "# Leave\n\nEveryone gets thirty days of paid leave a year.\n\nAsk your manager two weeks ahead."}
	addedDoc := s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusCreated, body: leave})
	var doc oasDocument
	addedDoc.decode(t, &doc)
	docPath := kbPath + "/documents/" + doc.ID
	if loc := addedDoc.header.Get("Location"); loc != docPath {
		t.Errorf("Location = %q, want %q", loc, docPath)
	}
	if doc = s.awaitIngestion(docPath, alice, addedDoc.header.Get(headerConsistency)); doc.State != "ready" || doc.Chunks != 3 {
		t.Errorf("after ingestion the document is %+v, want ready with 3 chunks", doc)
	}
	upload, uploadType := oasMultipart(t, "", "file", "faq.txt", "text/plain", []byte("Expenses are reimbursed monthly."))
	uploaded := s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusCreated,
		body: upload, headers: map[string]string{"Content-Type": uploadType}})
	var faq oasDocument
	uploaded.decode(t, &faq)
	if faq = s.awaitIngestion(kbPath+"/documents/"+faq.ID, alice, uploaded.header.Get(headerConsistency)); faq.Title != "faq.txt" || faq.State != "ready" {
		t.Errorf("the upload is %+v, want faq.txt, ready", faq)
	}
	s.do(oasCall{method: http.MethodGet, path: kbPath + "/documents?limit=1", token: dave, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: kbPath + "/documents", token: erin, want: http.StatusNotFound})

	// Documents the server refuses.
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusConflict,
		body: map[string]any{"title": "Leave, again", "content": leave["content"], "content_type": "text/markdown"}})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnsupportedMediaType,
		body: map[string]any{"title": "Scan", "content": "%PDF-1.7", "content_type": "application/pdf"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnsupportedMediaType,
		body: map[string]any{"title": "Page", "content": "<p>Hi</p>", "content_type": "text/html"}})
	picture, pictureType := oasMultipart(t, "Logo", "file", "logo.png", "image/png", []byte("\x89PNG"))
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnsupportedMediaType,
		body: picture, headers: map[string]string{"Content-Type": pictureType}})
	titleOnly, titleOnlyType := oasMultipart(t, "Nothing", "note", "note.txt", "text/plain", []byte("No file part."))
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnprocessableEntity,
		body: titleOnly, headers: map[string]string{"Content-Type": titleOnlyType}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnsupportedMediaType,
		body: "Just text.", headers: map[string]string{"Content-Type": "text/plain"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"title": "", "content": "Untitled."}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusRequestEntityTooLarge,
		body: map[string]any{"title": "Huge", "content": strings.Repeat("a", MaxBodyBytes+1)}, invalid: true})
	huge, hugeType := oasMultipart(t, "Huge", "file", "huge.txt", "text/plain", bytes.Repeat([]byte("a"), knowledge.MaxContentBytes+1))
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusRequestEntityTooLarge,
		body: huge, headers: map[string]string{"Content-Type": hugeType}})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: carol, want: http.StatusForbidden,
		body: map[string]any{"title": "Carol's notes", "content": "Notes."}})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: dave, want: http.StatusForbidden,
		body: map[string]any{"title": "Dave's notes", "content": "Notes."}})
	s.do(oasCall{method: http.MethodGet, path: docPath, token: hank, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodGet, path: kbPath + "/documents/" + kb.ID, token: alice, want: http.StatusNotFound})

	// Search.
	var found struct {
		Results []struct {
			DocumentID string `json:"document_id"`
			Heading    string `json:"heading"`
		} `json:"results"`
	}
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusOK,
		body: map[string]any{"query": "How many days of paid leave?", "k": 5}}).decode(t, &found)
	if len(found.Results) == 0 || found.Results[0].DocumentID != doc.ID || found.Results[0].Heading != "Leave" {
		t.Errorf("search found %+v, want the leave policy first", found.Results)
	}
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: dave, want: http.StatusOK,
		body: map[string]any{"query": "expenses", "knowledge_base_ids": []string{kb.ID}}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: erin, want: http.StatusOK,
		body: map[string]any{"query": "expenses"}}).decode(t, &found)
	if len(found.Results) != 0 {
		t.Errorf("erin, whom the grants leave out, found %+v", found.Results)
	}
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: erin, want: http.StatusNotFound,
		body: map[string]any{"query": "expenses", "knowledge_base_ids": []string{kb.ID}}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"query": "leave", "k": 51}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"query": ""}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"query": strings.Repeat("q", 2001)}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusBadRequest,
		body: map[string]any{"query": "leave", "filter": "x"}, invalid: true})

	// Conversations: a bot over the handbook, asked for JSON and for a
	// stream, read back, refused in every way the routes refuse, held to
	// a quota, and archived.
	var helper struct{ ID string }
	s.do(oasCall{method: http.MethodPost, path: "/v1/bots", token: alice, want: http.StatusCreated,
		body: map[string]any{"name": "Handbook helper", "instructions": "Answer from the handbook.",
			"grants": map[string]any{"knowledge_bases": []string{kb.ID}, "tools": []string{"search_knowledge", "read_document"},
				"permissions": []string{"kb:read"}}}}).decode(t, &helper)
	var conv struct{ ID string }
	startedConv := s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: alice, want: http.StatusCreated,
		body: map[string]any{"bot_id": helper.ID, "title": "Leave questions"}})
	startedConv.decode(t, &conv)
	convPath := "/v1/conversations/" + conv.ID
	if loc := startedConv.header.Get("Location"); loc != convPath {
		t.Errorf("Location = %q, want %q", loc, convPath)
	}
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: alice, want: http.StatusCreated,
		body: map[string]any{"bot_id": helper.ID}, headers: map[string]string{"Prefer": "respond-async"}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: alice, want: http.StatusNotFound,
		body: map[string]any{"bot_id": "no-such-bot"}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: hank, want: http.StatusNotFound,
		body: map[string]any{"bot_id": helper.ID}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: dave, want: http.StatusForbidden,
		body: map[string]any{"bot_id": helper.ID}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: alice, want: http.StatusBadRequest,
		body: map[string]any{"bot_id": helper.ID, "colour": "red"}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: "/v1/conversations", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"bot_id": helper.ID, "title": strings.Repeat("t", 201)}, invalid: true})

	var answer struct {
		Message struct {
			Citations []struct {
				DocumentID string `json:"document_id"`
			} `json:"citations"`
		} `json:"message"`
	}
	asked := s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusOK,
		body: map[string]any{"content": "How many days of paid leave does everyone get?"}})
	asked.decode(t, &answer)
	if len(answer.Message.Citations) == 0 || answer.Message.Citations[0].DocumentID != doc.ID {
		t.Errorf("the answer cites %+v, want the leave policy", answer.Message.Citations)
	}
	streamed := s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusOK,
		body:    map[string]any{"content": "Read the policy.\n@tool read_document {\"document_id\":\"" + doc.ID + "\"}\n@tool read_document {\"document_id\":\"" + kb.ID + "\"}"},
		headers: map[string]string{"Accept": "text/event-stream"}})
	if ct := streamed.header.Get("Content-Type"); ct != "text/event-stream" || !bytes.Contains(streamed.body, []byte("event: tool.call\n")) ||
		!bytes.Contains(streamed.body, []byte("event: message.completed\n")) {
		t.Errorf("the streamed turn answered %s:\n%s", ct, streamed.body)
	}
	s.do(oasCall{method: http.MethodGet, path: convPath + "?consistency=" + asked.header.Get(headerConsistency), token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: convPath, token: alice, want: http.StatusOK,
		headers: map[string]string{headerConsistency: asked.header.Get(headerConsistency)}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/conversations?limit=1", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/conversations?bot_id=" + helper.ID, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/conversations?bot_id=" + strings.Repeat("b", 65), token: alice,
		want: http.StatusBadRequest, invalid: true})
	s.do(oasCall{method: http.MethodGet, path: "/v1/conversations", token: dave, want: http.StatusOK})
	// Another member's conversation is not found, but for
	// conversations:read; another organization's is not found.
	s.do(oasCall{method: http.MethodGet, path: convPath, token: dave, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodGet, path: convPath, token: hank, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: carol, want: http.StatusNotFound,
		body: map[string]any{"content": "Mine now?"}})
	s.do(oasCall{method: http.MethodDelete, path: convPath, token: carol, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: dave, want: http.StatusForbidden,
		body: map[string]any{"content": "May I?"}})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"content": ""}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusBadRequest,
		body: map[string]any{"content": "Hi", "stream": true}, invalid: true})

	// A model endpoint that fails: 502 for JSON, an error event once a
	// stream has begun.
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusBadGateway,
		body: map[string]any{"content": oasModelDown}})
	failed := s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusOK,
		body: map[string]any{"content": oasModelDown}, headers: map[string]string{"Accept": "text/event-stream"}})
	if !bytes.Contains(failed.body, []byte("event: error\n")) || !bytes.Contains(failed.body, []byte("turn-failed")) {
		t.Errorf("a turn failing mid-stream streamed:\n%s", failed.body)
	}

	// The platform sets the organization's turn quotas; a spent budget of
	// model tokens answers 429.
	s.do(oasCall{method: http.MethodPut, path: "/v1/orgs/" + org.ID + "/quotas", token: s.platform, want: http.StatusOK,
		body: map[string]any{"concurrent_turns": 4, "model_tokens_per_hour": 1}})
	s.do(oasCall{method: http.MethodPut, path: "/v1/orgs/" + org.ID + "/quotas", token: s.platform, want: http.StatusUnprocessableEntity,
		body: map[string]any{"concurrent_turns": -1}, invalid: true})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusOK,
		body: map[string]any{"content": "How many days of paid leave?"}})
	spent := s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusTooManyRequests,
		body: map[string]any{"content": "And again?"}})
	if spent.header.Get("Retry-After") == "" {
		t.Error("a spent token budget answered without Retry-After")
	}
	s.do(oasCall{method: http.MethodPut, path: "/v1/orgs/" + org.ID + "/quotas", token: s.platform, want: http.StatusOK,
		body: map[string]any{}})

	s.do(oasCall{method: http.MethodDelete, path: convPath, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodDelete, path: convPath, token: alice, want: http.StatusConflict})
	s.do(oasCall{method: http.MethodPost, path: convPath + "/messages", token: alice, want: http.StatusConflict,
		body: map[string]any{"content": "Still there?"}})
	s.do(oasCall{method: http.MethodGet, path: convPath, token: alice, want: http.StatusOK})

	// Replace and delete.
	replaced := s.do(oasCall{method: http.MethodPut, path: docPath, token: alice, want: http.StatusOK,
		body: map[string]any{"title": "Leave policy", "content_type": "text/markdown",
			"content": "# Leave\n\nEveryone gets thirty-two days of paid leave a year."}})
	replaced.decode(t, &doc)
	if doc = s.awaitIngestion(docPath, alice, replaced.header.Get(headerConsistency)); doc.Version != 2 || doc.State != "ready" {
		t.Errorf("the replaced document is %+v, want version 2, ready", doc)
	}
	again := s.do(oasCall{method: http.MethodPut, path: docPath, token: alice, want: http.StatusOK,
		body: map[string]any{"title": "Leave policy", "content_type": "text/markdown",
			"content": "# Leave\n\nEveryone gets thirty-two days of paid leave a year."}})
	if again.header.Get(headerConsistency) != "" {
		t.Errorf("replacing a document with its own content answered Palisade-Consistency %s", again.header.Get(headerConsistency))
	}
	upload, uploadType = oasMultipart(t, "FAQ", "file", "faq.md", "text/markdown", []byte("# FAQ\n\nExpenses are reimbursed weekly."))
	s.do(oasCall{method: http.MethodPut, path: kbPath + "/documents/" + faq.ID, token: alice, want: http.StatusOK,
		body: upload, headers: map[string]string{"Content-Type": uploadType}})
	s.do(oasCall{method: http.MethodPut, path: docPath, token: carol, want: http.StatusForbidden,
		body: map[string]any{"title": "Mine", "content": "Carol's leave."}})
	s.do(oasCall{method: http.MethodDelete, path: kbPath + "/documents/" + faq.ID, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: kbPath + "/documents/" + faq.ID, token: alice, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodDelete, path: kbPath + "/documents/" + faq.ID, token: alice, want: http.StatusNotFound})

	// Archive.
	s.do(oasCall{method: http.MethodDelete, path: kbPath, token: carol, want: http.StatusForbidden})
	s.do(oasCall{method: http.MethodDelete, path: kbPath, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: kbPath, token: dave, want: http.StatusOK}).decode(t, &kb)
	if !kb.Archived {
		t.Error("the archived base does not say so")
	}
	s.do(oasCall{method: http.MethodDelete, path: kbPath, token: alice, want: http.StatusConflict})
	s.do(oasCall{method: http.MethodPatch, path: kbPath, token: alice, want: http.StatusConflict,
		body: map[string]any{"name": "Old handbook"}})
	s.do(oasCall{method: http.MethodPut, path: kbPath + "/grants", token: alice, want: http.StatusConflict,
		body: map[string]any{"grants": []any{}}})
	s.do(oasCall{method: http.MethodPost, path: kbPath + "/documents", token: alice, want: http.StatusConflict,
		body: map[string]any{"title": "Late", "content": "Too late."}})
	s.do(oasCall{method: http.MethodPut, path: docPath, token: alice, want: http.StatusConflict,
		body: map[string]any{"title": "Late", "content": "Too late."}})
	s.do(oasCall{method: http.MethodPost, path: "/v1/knowledge-bases/search", token: alice, want: http.StatusNotFound,
		body: map[string]any{"query": "leave", "knowledge_base_ids": []string{kb.ID}}})
	s.do(oasCall{method: http.MethodGet, path: kbPath + "/documents", token: dave, want: http.StatusOK})
	// Archived means read-only (issue 9): its documents cannot be deleted either.
	s.do(oasCall{method: http.MethodDelete, path: docPath, token: alice, want: http.StatusConflict})

	// Data sources: created with a password (never answered), read,
	// tested (a good and a failing connection), changed, granted, deleted.
	var source struct{ ID string }
	s.do(oasCall{method: http.MethodPost, path: "/v1/data-sources", token: alice, want: http.StatusCreated,
		body: map[string]any{"name": "Sales", "kind": "postgres", "allowed_tables": []any{"sales", map[string]any{"name": "regions", "columns": []string{"name"}}},
			"connection": map[string]any{"host": "db.example", "database": "sales", "user": "reader", "password": "pw", "params": map[string]string{"sslmode": "require"}}}}).decode(t, &source)
	s.do(oasCall{method: http.MethodPost, path: "/v1/data-sources", token: alice, want: http.StatusUnprocessableEntity,
		body: map[string]any{"name": "Bad", "kind": "sqlite", "allowed_tables": []string{"t"}, "connection": map[string]any{"path": "../x.db"}}})
	sourcePath := "/v1/data-sources/" + source.ID
	s.do(oasCall{method: http.MethodGet, path: "/v1/data-sources", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: sourcePath, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPost, path: sourcePath + "/test", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: sourcePath, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPatch, path: sourcePath, token: alice, want: http.StatusOK,
		body: map[string]any{"name": "Sales EU", "connection": map[string]any{"host": "down.example", "database": "sales", "user": "reader"}}})
	s.do(oasCall{method: http.MethodPost, path: sourcePath + "/test", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: sourcePath, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodPut, path: sourcePath + "/grants", token: alice, want: http.StatusOK,
		body: map[string]any{"grants": []map[string]any{{"subject": "role:analyst", "permissions": []string{"datasources:query"}}}}})
	s.do(oasCall{method: http.MethodDelete, path: sourcePath, token: alice, want: http.StatusNoContent})
	s.do(oasCall{method: http.MethodGet, path: sourcePath, token: alice, want: http.StatusNotFound})

	// The audit log, with the envelopes of everything above.
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/events?limit=500", token: alice,
		want: http.StatusOK}).decode(t, &page)
	if len(page.Items) < 10 {
		t.Errorf("the audit log holds %d events, want the whole story", len(page.Items))
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/events?type=BotCreated&type=AccessDenied&actor=alice",
		token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/events?type=DocumentChunked&type=KnowledgeSearched",
		token: alice, want: http.StatusOK})

	// The audit chain, once the chainer has followed the log.
	if _, err := s.chainer.CatchUp(context.Background()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	var checkpoints struct {
		Items     []json.RawMessage `json:"items"`
		NextAfter string            `json:"next_after"`
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/checkpoints?limit=1", token: alice, want: http.StatusOK}).decode(t, &checkpoints)
	if len(checkpoints.Items) != 1 || checkpoints.NextAfter == "" {
		t.Errorf("first page of checkpoints: %+v", checkpoints)
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/checkpoints?after=" + checkpoints.NextAfter, token: alice, want: http.StatusOK})
	var verified struct {
		OK bool `json:"ok"`
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/verify", token: alice, want: http.StatusOK}).decode(t, &verified)
	if !verified.OK {
		t.Error("the untouched log does not verify")
	}

	// Narratives of those requests, and the export.
	var narratives struct {
		Items []struct {
			CorrelationID string `json:"correlation_id"`
		} `json:"items"`
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives?limit=500", token: alice,
		want: http.StatusOK}).decode(t, &narratives)
	if len(narratives.Items) == 0 {
		t.Fatal("no narratives")
	}
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives?type=DocumentChunked&actor=alice&since=2020-01-01T00:00:00Z",
		token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives?resource=nothing", token: alice, want: http.StatusUnprocessableEntity})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives?since=yesterday", token: alice, want: http.StatusBadRequest, invalid: true})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives/" + narratives.Items[0].CorrelationID, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/narratives/no-such-request", token: alice, want: http.StatusNotFound})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/export", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/export?format=ocsf&since=2020-01-01T00:00:00Z", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/export?format=csv", token: alice, want: http.StatusBadRequest, invalid: true})
	// Access review, from the log folded up to a moment.
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/access?subject=user:alice", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/access?subject=user:bob&issuer=" + url.QueryEscape(oasExternalIssuer) +
		"&at=2000-01-01T00:00:00Z", token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/access?resource=bot:" + bot.ID, token: alice, want: http.StatusOK})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/access?resource=doc:x", token: alice, want: http.StatusBadRequest})
	s.do(oasCall{method: http.MethodPost, path: "/v1/members", token: alice, want: http.StatusCreated,
		body: map[string]any{"sub": "vera", "roles": []string{"viewer"}}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/audit/access?subject=user:alice",
		token: s.mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "vera"), want: http.StatusForbidden})
	// Closing the organization, last: its owner may not, the platform must
	// confirm its name, and afterwards its tokens answer 401.
	orgPath := "/v1/orgs/" + org.ID
	s.do(oasCall{method: http.MethodDelete, path: orgPath, token: alice, want: http.StatusForbidden,
		body: map[string]string{"confirm": "Acme"}})
	s.do(oasCall{method: http.MethodDelete, path: orgPath, token: s.platform, want: http.StatusUnprocessableEntity,
		body: map[string]string{"confirm": "Acme Corp"}})
	s.do(oasCall{method: http.MethodDelete, path: "/v1/orgs/no-such-org", token: s.platform, want: http.StatusNotFound,
		body: map[string]string{"confirm": "Acme"}})
	s.do(oasCall{method: http.MethodDelete, path: orgPath, token: s.platform, want: http.StatusOK,
		body: map[string]string{"confirm": "Acme"}})
	s.do(oasCall{method: http.MethodDelete, path: orgPath, token: s.platform, want: http.StatusConflict,
		body: map[string]string{"confirm": "Acme"}})
	s.do(oasCall{method: http.MethodGet, path: "/v1/org", token: alice, want: http.StatusUnauthorized})
}

// oasDatabases plays the databases of data sources: db.example answers a
// schema, any other host is unreachable.
type oasDatabases struct{}

func (oasDatabases) Validate(datasources.Kind, datasources.Connection) error { return nil }

func (oasDatabases) Test(_ context.Context, _ string, _ datasources.Kind, conn datasources.Connection, _ sealing.Secret) (datasources.Schema, error) {
	if conn.Host != "db.example" {
		return datasources.Schema{}, errors.New("dial tcp: no route to host")
	}
	return datasources.Schema{Tables: []datasources.Table{{Name: "sales", Columns: []datasources.Column{{Name: "total", Type: "numeric"}}}}}, nil
}
