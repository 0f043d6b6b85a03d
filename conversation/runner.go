package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/quota"
	"github.com/palisadehq/palisade/tracing"
)

// Limits of a turn.
const (
	// MaxToolCalls bounds the tool calls of one turn, nested bots included.
	MaxToolCalls = 8
	// MaxDepth bounds how deep ask_bot nests bots (the conversation's bot
	// is depth 0).
	MaxDepth = 3
	// DefaultTurnTimeout is a turn's wall time unless configured.
	DefaultTurnTimeout = 60 * time.Second
	// maxModelCalls bounds the model requests of one bot in one turn.
	maxModelCalls = 12
	// MaxToolCallsPerResponse bounds the tool calls one model response
	// may ask for. Each is decided and recorded (those past the turn's
	// MaxToolCalls as refused), so without a bound one response of a
	// few megabytes could write a hundred thousand events; a response that
	// asks for more fails the turn, and none of its calls is recorded.
	MaxToolCallsPerResponse = 2 * MaxToolCalls
)

// Recorder is the write side of conversations (commands.Conversations).
type Recorder interface {
	BeginTurn(ctx context.Context, who access.Principal, conversationID, content string) (commands.Turn, error)
	RecordTurn(ctx context.Context, who access.Principal, d access.Decision, conversationID string, evs ...domain.Event) (commands.Result, error)
	RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string)
	Bot(ctx context.Context, orgID, id string) (commands.BotConfig, error)
}

// Principals resolves what a principal holds now (projections.Principals).
type Principals interface {
	Current(ctx context.Context, orgID string, actor eventstore.Actor) (access.Principal, error)
}

// Quotas are an organization's limits on turns (quota.Book).
type Quotas interface {
	Acquire(ctx context.Context, org, kind string) (release func(), err error)
	AllowModelTokens(org string, now time.Time) error
	ChargeModelTokens(org string, n int, now time.Time)
}

// Sink receives a turn's progress as it happens, for streaming. Only the
// conversation's own bot streams; nested bots are recorded, not streamed.
// An error from a sink (the client went away) cancels the turn.
type Sink interface {
	Delta(text string) error
	ToolCall(id, tool string, arguments json.RawMessage) error
	ToolResult(id, status, summary string) error
}

// Runner runs turns. It is safe for concurrent use.
type Runner struct {
	model      llm.Model
	tools      *Registry
	record     Recorder
	principals Principals
	quotas     Quotas
	timeout    time.Duration
	logger     *slog.Logger
	now        func() time.Time
	tracer     trace.Tracer
}

// Config configures a Runner.
type Config struct {
	Model      llm.Model
	Tools      *Registry
	Record     Recorder
	Principals Principals
	// Quotas may be nil (no limits).
	Quotas Quotas
	// TurnTimeout is a turn's wall time (DefaultTurnTimeout if zero).
	TurnTimeout time.Duration
	Logger      *slog.Logger
	// TracerProvider traces turns, model calls and tool calls (nil: off).
	TracerProvider trace.TracerProvider
}

// NewRunner returns a runner.
func NewRunner(cfg Config) *Runner {
	if cfg.TurnTimeout <= 0 {
		cfg.TurnTimeout = DefaultTurnTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{model: cfg.Model, tools: cfg.Tools, record: cfg.Record, principals: cfg.Principals,
		quotas: cfg.Quotas, timeout: cfg.TurnTimeout, logger: cfg.Logger, now: time.Now,
		tracer: tracing.Tracer(cfg.TracerProvider)}
}

// ToolCallView is a tool call as an answer reports it.
type ToolCallView struct {
	ID        string `json:"id"`
	Tool      string `json:"tool"`
	Arguments string `json:"arguments"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// Answer is a finished turn.
type Answer struct {
	ConversationID, TurnID, MessageID string
	Content                           string
	Citations                         []conversations.Citation
	ToolCalls                         []ToolCallView
	Usage                             llm.Usage
	Model                             string
	// Result is the record of the answer, for the consistency token.
	Result commands.Result
}

// Errors of a turn that did not answer; each was recorded.
var (
	ErrTurnCancelled = errors.New("turn cancelled")
	ErrTurnFailed    = errors.New("turn failed")
)

// Ask runs one turn of who's conversation: it records the question, runs
// the model and the tools, and records the answer (or the failure or
// cancellation). sink may be nil.
func (r *Runner) Ask(ctx context.Context, who access.Principal, conversationID, content string, sink Sink) (_ Answer, err error) {
	ctx, span := r.tracer.Start(ctx, "bot turn", trace.WithAttributes(attribute.String("palisade.org_id", who.OrgID)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "turn without an answer")
		}
		span.End()
	}()
	// The turn is authorized and recorded first, so that a caller who may
	// not run the bot learns that (403, 404) rather than its org's quota,
	// and a turn refused for the quota is on the record.
	started, err := r.record.BeginTurn(ctx, who, conversationID, content)
	if err != nil {
		return Answer{}, err
	}
	if r.quotas != nil {
		release, err := r.admit(ctx, who.OrgID)
		if err != nil {
			as, d := (&turn{runner: r, invoker: who}).effectiveNow(context.WithoutCancel(ctx), nil)
			_, recErr := r.record.RecordTurn(context.WithoutCancel(ctx), as, d, conversationID,
				&conversations.TurnFailed{TurnID: started.TurnID, Reason: "refused: " + err.Error()})
			return Answer{}, errors.Join(err, recErr)
		}
		defer release()
	}
	t := &turn{runner: r, invoker: who, conversationID: conversationID, turnID: started.TurnID,
		passages: map[int]citedPassage{}}
	top := botOf(started.Bot)
	runCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	msgs := make([]llm.Message, 0, 2*len(started.History)+2)
	if top.Instructions != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: top.Instructions})
	}
	for _, ex := range started.History {
		msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: ex.Question}, llm.Message{Role: llm.RoleAssistant, Content: ex.Answer})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: content})
	text, err := t.run(runCtx, frame{bot: top, chain: []Bot{top}, sink: sink}, msgs)
	usage := t.usage()
	if r.quotas != nil {
		r.quotas.ChargeModelTokens(who.OrgID, usage.PromptTokens+usage.CompletionTokens, r.now())
	}
	record := context.WithoutCancel(ctx)
	if err != nil {
		return Answer{}, t.fail(record, ctx, runCtx, err)
	}
	citations := t.citations(text)
	as, d := t.effectiveNow(record, []Bot{top})
	answered := &conversations.AnswerRecorded{
		TurnID: t.turnID, MessageID: started.MessageID, Content: text, ContentSHA256: conversations.SHA256(text),
		Citations: citations, Model: t.modelName(), PromptTokens: usage.PromptTokens, CompletionTokens: usage.CompletionTokens,
	}
	res, err := r.record.RecordTurn(record, as, d, conversationID, answered)
	if err != nil {
		return Answer{}, fmt.Errorf("record answer: %w", err)
	}
	return Answer{ConversationID: conversationID, TurnID: t.turnID, MessageID: started.MessageID, Content: text,
		Citations: citations, ToolCalls: t.views(), Usage: usage, Model: answered.Model, Result: res}, nil
}

// admit takes one of org's turn slots while its model-token budget lasts.
func (r *Runner) admit(ctx context.Context, org string) (release func(), err error) {
	if err := r.quotas.AllowModelTokens(org, r.now()); err != nil {
		return nil, err
	}
	return r.quotas.Acquire(ctx, org, quota.WorkTurns)
}

// fail records why a turn ended without an answer and returns the error to
// give the caller.
func (t *turn) fail(record, request, run context.Context, cause error) error {
	as, d := t.effectiveNow(record, nil)
	switch {
	case request.Err() != nil || errors.Is(cause, errSinkGone):
		_, err := t.runner.record.RecordTurn(record, as, d, t.conversationID, &conversations.TurnCancelled{TurnID: t.turnID, Reason: "the caller went away"})
		return errors.Join(fmt.Errorf("%w: the caller went away", ErrTurnCancelled), err)
	case run.Err() != nil:
		reason := fmt.Sprintf("the turn took longer than %s", t.runner.timeout)
		_, err := t.runner.record.RecordTurn(record, as, d, t.conversationID, &conversations.TurnFailed{TurnID: t.turnID, Reason: reason})
		return errors.Join(fmt.Errorf("%w: %s", ErrTurnFailed, reason), err)
	}
	reason := failureReason(cause)
	t.runner.logger.Error("bot turn failed", "conversation_id", t.conversationID, "turn_id", t.turnID, "err", cause)
	_, err := t.runner.record.RecordTurn(record, as, d, t.conversationID, &conversations.TurnFailed{TurnID: t.turnID, Reason: reason})
	return errors.Join(fmt.Errorf("%w: %s", ErrTurnFailed, reason), err)
}

// failureReason says why a turn failed without repeating anything a model
// endpoint wrote back beyond its status.
func failureReason(err error) string {
	var (
		status  *llm.StatusError
		tooMany *tooManyCallsError
	)
	switch {
	case errors.As(err, &tooMany):
		return tooMany.Error()
	case errors.As(err, &status):
		return fmt.Sprintf("the model endpoint answered HTTP %d", status.StatusCode)
	case errors.Is(err, llm.ErrMalformedResponse):
		return "the model endpoint answered with a malformed response"
	case errors.Is(err, llm.ErrResponseTooLarge):
		return "the model endpoint's response was too large"
	}
	return "the model could not be reached"
}

var errSinkGone = errors.New("stream closed by the client")

// tooManyCallsError fails a turn whose model asked for more than
// MaxToolCallsPerResponse tool calls in one response.
type tooManyCallsError struct{ asked int }

func (e *tooManyCallsError) Error() string {
	return fmt.Sprintf("the model asked for %d tool calls in one response, more than %d", e.asked, MaxToolCallsPerResponse)
}

// notVisible is the one answer for a resource that does not exist or that
// the effective principal may not see: the two are never told apart.
const notVisible = "denied: no such resource, or not visible to this principal and bot"

// turn is the state of one running turn, shared by nested bots.
type turn struct {
	runner         *Runner
	invoker        access.Principal
	conversationID string
	turnID         string

	mu       sync.Mutex
	calls    int
	nextRef  int
	passages map[int]citedPassage
	shown    []ToolCallView
	used     llm.Usage
	model    string
	callSeq  int
}

type citedPassage struct {
	Passage
	// depth of the frame whose tool returned it.
	depth int
}

// frame is one bot answering inside a turn: the conversation's bot, or a
// bot consulted through ask_bot.
type frame struct {
	bot Bot
	// chain is the bots from the conversation's down to this one.
	chain []Bot
	sink  Sink
}

func (f frame) depth() int { return len(f.chain) - 1 }

func botOf(c commands.BotConfig) Bot {
	return Bot{ID: c.ID, Instructions: c.Instructions, KnowledgeBases: c.Grants.KnowledgeBases,
		DataSources: c.Grants.DataSources, Tools: c.Grants.Tools, Permissions: c.Grants.PermissionSet()}
}

// run lets a bot answer msgs, running the tool calls its model requests.
func (t *turn) run(ctx context.Context, f frame, msgs []llm.Message) (string, error) {
	offered := t.runner.tools.offered(intersect(f.chain))
	for step := 0; ; step++ {
		req := llm.Request{Messages: msgs, Tools: offered}
		if step >= maxModelCalls-1 || t.callsLeft() == 0 {
			req.Tools = nil
		}
		var onDelta llm.DeltaFunc
		if f.sink != nil {
			onDelta = func(text string) error {
				if err := f.sink.Delta(text); err != nil {
					return errSinkGone
				}
				return nil
			}
		}
		resp, err := t.complete(ctx, f, req, onDelta)
		if err != nil {
			return "", err
		}
		t.addUsage(resp)
		if len(resp.ToolCalls) == 0 {
			return resp.Content, nil
		}
		if n := len(resp.ToolCalls); n > MaxToolCallsPerResponse {
			return "", &tooManyCallsError{asked: n}
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: resp.Content, ToolCalls: resp.ToolCalls})
		for _, call := range resp.ToolCalls {
			result, err := t.call(ctx, f, call, req.Tools == nil)
			if err != nil {
				return "", err
			}
			msgs = append(msgs, llm.Message{Role: llm.RoleTool, ToolCallID: call.ID, Content: result})
		}
		if req.Tools == nil {
			// The model was told to answer and asked for tools again:
			// its calls were refused; its text is the answer.
			return resp.Content, nil
		}
	}
}

// complete is one model call, in a span of its own.
func (t *turn) complete(ctx context.Context, f frame, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	ctx, span := t.runner.tracer.Start(ctx, "model call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("palisade.model", t.runner.model.Name()),
		attribute.Int("palisade.depth", f.depth()),
		attribute.Int("palisade.tools_offered", len(req.Tools)),
	))
	defer span.End()
	resp, err := t.runner.model.Complete(ctx, req, onDelta)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "model call failed")
		return resp, err
	}
	span.SetAttributes(attribute.Int("palisade.tool_calls", len(resp.ToolCalls)),
		attribute.Int("palisade.prompt_tokens", resp.Usage.PromptTokens),
		attribute.Int("palisade.completion_tokens", resp.Usage.CompletionTokens))
	return resp, nil
}

// call decides one tool call, runs it when allowed, records both, and
// returns what the model reads. It runs in a span named for the tool
// (only a registered tool's name: a model can ask for any name).
func (t *turn) call(ctx context.Context, f frame, call llm.ToolCall, forcedAnswer bool) (string, error) {
	name := t.toolName(call.Name)
	ctx, span := t.runner.tracer.Start(ctx, "tool call "+name, trace.WithAttributes(
		attribute.String("palisade.tool", name), attribute.Int("palisade.depth", f.depth())))
	defer span.End()
	result, err := t.decideAndRun(ctx, f, call, forcedAnswer)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "tool call ended the turn")
	}
	return result, err
}

// toolName is the name a call is recorded, streamed and shown under: the
// registered tool's, or conversations.UnknownTool for a name that names
// none. The name a model chose is free text (see
// conversations.ToolCallDecided).
func (t *turn) toolName(requested string) string {
	if _, known := t.runner.tools.Lookup(requested); known {
		return requested
	}
	return conversations.UnknownTool
}

// decideAndRun is call's work.
func (t *turn) decideAndRun(ctx context.Context, f frame, call llm.ToolCall, forcedAnswer bool) (string, error) {
	record := context.WithoutCancel(ctx)
	id := t.callID(call.ID)
	args := call.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	capped, sum, size := conversations.CapArguments(args)
	chain, err := t.currentChain(record, f.chain)
	if err != nil {
		return "", err
	}
	as, base := t.effectiveNow(record, chain)
	granted := intersect(chain)
	name := t.toolName(call.Name)
	tool, known := t.runner.tools.Lookup(name)
	var argsErr error
	if known {
		argsErr = tool.validate(args)
	}
	d := decideCall(tool, granted, as, base, argsErr, !forcedAnswer && t.takeCall())
	decided := &conversations.ToolCallDecided{
		TurnID: t.turnID, CallID: id, BotID: f.bot.ID, Depth: f.depth(), Tool: name,
		Arguments: capped, ArgumentsSHA256: sum, ArgumentsSize: size, Allowed: d.Allowed,
		Permission: d.Permission.String(), EffectivePermissions: as.Permissions.Names(), Reason: d.Reason(),
	}
	if !known {
		decided.RequestedTool = conversations.CapToolName(call.Name)
	}
	if d.Permission == access.PermissionUnknown {
		decided.Permission = ""
	}
	if _, err := t.runner.record.RecordTurn(record, as, d, t.conversationID, decided); err != nil {
		return "", fmt.Errorf("record tool call: %w", err)
	}
	if f.sink != nil {
		if err := f.sink.ToolCall(id, name, args); err != nil {
			return "", errSinkGone
		}
	}
	if !d.Allowed {
		t.runner.record.RecordDenial(record, as, d, "tools/"+name)
		t.addView(ToolCallView{ID: id, Tool: name, Arguments: capped, Status: conversations.StatusDenied, Reason: d.Reason()}, f)
		if err := t.streamResult(f, id, conversations.StatusDenied, d.Reason()); err != nil {
			return "", err
		}
		return denial(d.Reason()), nil
	}
	out, runErr := tool.Run(ctx, Call{ID: id, As: as, Bot: granted, Arguments: args, turn: t, chain: chain})
	if runErr != nil && ctx.Err() != nil {
		return "", ctx.Err()
	}
	if errors.Is(runErr, errSinkGone) {
		return "", runErr
	}
	completed := &conversations.ToolCallCompleted{TurnID: t.turnID, CallID: id, Tool: name}
	var result string
	var denied *DeniedError
	switch {
	case errors.As(runErr, &denied):
		t.runner.record.RecordDenial(record, as, denied.Decision, denied.Resource)
		completed.Status, completed.Error, completed.Summary = conversations.StatusDenied, denied.Error(), "denied"
		result = denial(denied.Error())
	case errors.Is(runErr, domain.ErrNotFound) || errors.Is(runErr, domain.ErrForbidden):
		// The read side recorded the refusal; a resource the principal
		// may not see answers like one that does not exist.
		completed.Status, completed.Error, completed.Summary = conversations.StatusDenied, notVisible, "denied"
		result = denial(notVisible)
	case runErr != nil:
		msg := toolError(runErr)
		completed.Status, completed.Error, completed.Summary = conversations.StatusError, msg, "error"
		completed.DataSourceIDs, completed.AnalyticsJobIDs = out.DataSourceIDs, out.AnalyticsJobIDs
		result = mustJSON(map[string]any{"status": "error", "error": msg})
	default:
		result = t.resultFor(out, f.depth())
		completed.Status, completed.Summary = conversations.StatusOK, out.Summary
		completed.KnowledgeBaseIDs, completed.DocumentIDs, completed.ChunkIDs, completed.BotIDs = out.KnowledgeBaseIDs, out.DocumentIDs, out.ChunkIDs, out.BotIDs
		completed.DataSourceIDs, completed.AnalyticsJobIDs = out.DataSourceIDs, out.AnalyticsJobIDs
		completed.RowCount = out.Rows
	}
	completed.ResultSize, completed.ResultSHA256 = len(result), conversations.SHA256(result)
	if _, err := t.runner.record.RecordTurn(record, as, d, t.conversationID, completed); err != nil {
		return "", fmt.Errorf("record tool result: %w", err)
	}
	reason := completed.Error
	t.addView(ToolCallView{ID: id, Tool: name, Arguments: capped, Status: completed.Status, Reason: reason}, f)
	summary := completed.Summary
	if reason != "" {
		summary = reason
	}
	if err := t.streamResult(f, id, completed.Status, summary); err != nil {
		return "", err
	}
	return result, nil
}

func (t *turn) streamResult(f frame, id, status, summary string) error {
	if f.sink == nil {
		return nil
	}
	if err := f.sink.ToolResult(id, status, summary); err != nil {
		return errSinkGone
	}
	return nil
}

// toolError is what the model and the record learn of a tool's failure.
func toolError(err error) string {
	var te *ToolError
	switch {
	case errors.As(err, &te):
		return te.Message
	case errors.Is(err, domain.ErrNotFound):
		return "not found"
	case errors.Is(err, domain.ErrInvalid):
		return "invalid request"
	case errors.Is(err, domain.ErrForbidden):
		return "denied"
	}
	return "the tool failed"
}

func denial(reason string) string {
	return mustJSON(map[string]any{"status": "denied", "reason": reason})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `{"status":"error","error":"unencodable result"}`
	}
	return string(b)
}

// decideCall is the decision on one tool call before it runs, in order:
// the tool must exist and be granted to every bot of the chain (granted is
// their intersection), the turn must have a call left, the arguments must
// match the schema, the invoker must still be resolvable (base), and the
// effective principal must hold the tool's permission. The resources the
// tool touches are decided by the tool, on the same principal and grants.
func decideCall(tool *Tool, granted Bot, as access.Principal, base access.Decision, argsErr error, withinLimit bool) access.Decision {
	if tool == nil {
		return access.Decision{Code: access.ReasonUnknownTool}
	}
	d := access.Decision{Permission: tool.Permission}
	switch {
	case !slices.Contains(granted.Tools, tool.Name):
		d.Code = access.ReasonToolNotGranted
	case !withinLimit:
		d.Code = access.ReasonCallLimit
	case argsErr != nil:
		d.Code = access.ReasonInvalidArguments
	case !base.Allowed:
		d = base
		d.Permission = tool.Permission
	default:
		d = access.Decide(as, tool.Permission, access.OrgResource(as.OrgID))
	}
	return d
}

// intersect returns what every bot of chain is granted: the tools, the
// knowledge bases, the data sources and the permissions all of them hold. A bot consulted
// through ask_bot never uses more than its callers could.
func intersect(chain []Bot) Bot {
	out := chain[len(chain)-1]
	out.Tools = slices.Clone(out.Tools)
	out.KnowledgeBases = slices.Clone(out.KnowledgeBases)
	out.DataSources = slices.Clone(out.DataSources)
	for _, b := range chain[:len(chain)-1] {
		out.Tools = slices.DeleteFunc(out.Tools, func(s string) bool { return !slices.Contains(b.Tools, s) })
		out.KnowledgeBases = slices.DeleteFunc(out.KnowledgeBases, func(s string) bool { return !slices.Contains(b.KnowledgeBases, s) })
		out.DataSources = slices.DeleteFunc(out.DataSources, func(s string) bool { return !slices.Contains(b.DataSources, s) })
		out.Permissions = out.Permissions.Intersect(b.Permissions)
	}
	return out
}

// currentChain returns the bots of chain as their streams say now, so
// that a grant withdrawn or a bot archived while a turn runs holds from
// its next tool call on, as the invoker's own permissions do. A bot that
// is gone (archived, or no longer found) holds nothing.
func (t *turn) currentChain(ctx context.Context, chain []Bot) ([]Bot, error) {
	out := make([]Bot, len(chain))
	for i, b := range chain {
		cfg, err := t.runner.record.Bot(ctx, t.invoker.OrgID, b.ID)
		var archived *domain.ArchivedError
		switch {
		case errors.Is(err, domain.ErrNotFound) || errors.As(err, &archived):
			out[i] = Bot{ID: b.ID}
		case err != nil:
			return nil, fmt.Errorf("read bot %s as it is now: %w", b.ID, err)
		default:
			out[i] = botOf(cfg)
		}
	}
	return out, nil
}

// effectiveNow resolves the invoker as it is now and narrows it through
// chain: grants(bot₀) ∩ invoker, then grants(bot₁) ∩ that, and so on. A
// principal that can no longer be resolved (removed, revoked) holds
// nothing; the returned decision says so.
func (t *turn) effectiveNow(ctx context.Context, chain []Bot) (access.Principal, access.Decision) {
	invoker, err := t.runner.principals.Current(ctx, t.invoker.OrgID, commands.ActorOf(t.invoker))
	allowed := access.Decision{Allowed: true, Code: access.ReasonDelegationAllows}
	if err != nil {
		invoker = t.invoker
		invoker.Permissions = 0
		allowed = access.Decision{Code: access.ReasonMissingPermission}
	}
	as := invoker
	for _, b := range chain {
		as = access.Delegate(as, access.KindBot, b.ID, b.Permissions)
	}
	return as, allowed
}

func (t *turn) callsLeft() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return MaxToolCalls - t.calls
}

func (t *turn) takeCall() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls >= MaxToolCalls {
		return false
	}
	t.calls++
	return true
}

// callID is the recorded id of a call: the turn's own sequence, so a
// model cannot make two calls share an id.
func (t *turn) callID(string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.callSeq++
	return "call_" + strconv.Itoa(t.callSeq)
}

func (t *turn) addUsage(resp llm.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.used.PromptTokens += max(resp.Usage.PromptTokens, 0)
	t.used.CompletionTokens += max(resp.Usage.CompletionTokens, 0)
	if t.model == "" {
		t.model = resp.Model
	}
}

func (t *turn) usage() llm.Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.used
}

func (t *turn) modelName() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.model == "" {
		return t.runner.model.Name()
	}
	return t.model
}

func (t *turn) addView(v ToolCallView, f frame) {
	if f.depth() > 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.shown = append(t.shown, v)
}

func (t *turn) views() []ToolCallView {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ToolCallView{}, t.shown...)
}

// resultFor numbers out's passages for citation and returns the JSON the
// model reads.
func (t *turn) resultFor(out Output, depth int) string {
	result := map[string]any{"status": "ok"}
	for k, v := range out.Result {
		result[k] = v
	}
	if out.Passages != nil {
		items := make([]map[string]any, len(out.Passages))
		t.mu.Lock()
		for i, p := range out.Passages {
			t.nextRef++
			t.passages[t.nextRef] = citedPassage{Passage: p, depth: depth}
			items[i] = map[string]any{"ref": t.nextRef, "chunk_id": p.ChunkID, "document_id": p.DocumentID,
				"knowledge_base_id": p.KnowledgeBaseID, "title": p.Title, "text": p.Text}
		}
		t.mu.Unlock()
		result["results"] = items
	}
	return mustJSON(result)
}

var citationMarker = regexp.MustCompile(`\[(\d{1,4})\]`)

// citations returns the passages text cites with [n], in order of first
// mention; markers naming no passage of this turn are ignored.
func (t *turn) citations(text string) []conversations.Citation {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []conversations.Citation{}
	seen := map[int]bool{}
	for _, m := range citationMarker.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		p, ok := t.passages[n]
		if !ok || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, conversations.Citation{Ref: n, ChunkID: p.ChunkID, DocumentID: p.DocumentID,
			KnowledgeBaseID: p.KnowledgeBaseID, Title: p.Title})
	}
	return out
}
