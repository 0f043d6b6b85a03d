package conversations

import "github.com/palisadehq/palisade/domain"

// Category is the stream category of conversations.
const Category = "conversation"

// Tool call statuses, as recorded and as the API shows them.
const (
	StatusOK     = "ok"
	StatusDenied = "denied"
	StatusError  = "error"
)

// ConversationStarted starts a conversation's stream. StartedBy is the
// subject of its owner; StartedByKind says whether a user or a service
// account started it.
type ConversationStarted struct {
	ID            string `json:"id" audit:"record"`
	BotID         string `json:"bot_id" audit:"record"`
	Title         string `json:"title,omitempty" audit:"content"`
	StartedBy     string `json:"started_by" audit:"record"`
	StartedByKind string `json:"started_by_kind" audit:"record"`
}

// ConversationArchived records that a conversation takes no more turns.
type ConversationArchived struct{}

// TurnStarted records the question of one turn.
type TurnStarted struct {
	TurnID        string `json:"turn_id" audit:"record"`
	MessageID     string `json:"message_id" audit:"record"`
	Content       string `json:"content" audit:"content"`
	ContentSHA256 string `json:"content_sha256" audit:"digest"`
	ContentSize   int    `json:"content_size"`
}

// ToolCallDecided records one tool call a model requested and the decision
// taken on it. Arguments are capped at MaxRecordedArguments bytes; the hash
// and size are of the whole arguments. BotID is the bot whose model asked;
// Depth is 0 for the conversation's bot and grows by one per ask_bot.
//
// Tool is a registered tool's name, or UnknownTool: a model can ask for
// any name, and what it chose is free text (it may carry what the turn
// read), so a name that names no tool is kept only in RequestedTool, as
// content, capped at MaxRecordedToolName bytes.
type ToolCallDecided struct {
	TurnID               string   `json:"turn_id" audit:"record"`
	CallID               string   `json:"call_id" audit:"record"`
	BotID                string   `json:"bot_id" audit:"record"`
	Depth                int      `json:"depth"`
	Tool                 string   `json:"tool" audit:"record"`
	RequestedTool        string   `json:"requested_tool,omitempty" audit:"content"`
	Arguments            string   `json:"arguments" audit:"content"`
	ArgumentsSHA256      string   `json:"arguments_sha256" audit:"digest"`
	ArgumentsSize        int      `json:"arguments_size"`
	Allowed              bool     `json:"allowed"`
	Permission           string   `json:"permission,omitempty" audit:"record"`
	EffectivePermissions []string `json:"effective_permissions" audit:"record"`
	Reason               string   `json:"reason" audit:"record"`
}

// UnknownTool is ToolCallDecided.Tool for a name that names no
// registered tool.
const UnknownTool = "unknown"

// ToolCallCompleted records the outcome of an allowed tool call: what it
// touched (ids, counts, sizes) and the SHA-256 of the result the model
// received, never the result itself.
type ToolCallCompleted struct {
	TurnID string `json:"turn_id" audit:"record"`
	CallID string `json:"call_id" audit:"record"`
	Tool   string `json:"tool" audit:"record"`
	Status string `json:"status" audit:"record"`
	// Error is content: a tool's failure may quote what it worked on (a
	// query_data job's reason quotes the question or the data).
	Error            string   `json:"error,omitempty" audit:"content"`
	Summary          string   `json:"summary" audit:"record"`
	KnowledgeBaseIDs []string `json:"knowledge_base_ids,omitempty" audit:"record"`
	DocumentIDs      []string `json:"document_ids,omitempty" audit:"record"`
	ChunkIDs         []string `json:"chunk_ids,omitempty" audit:"record"`
	BotIDs           []string `json:"bot_ids,omitempty" audit:"record"`
	DataSourceIDs    []string `json:"data_source_ids,omitempty" audit:"record"`
	AnalyticsJobIDs  []string `json:"analytics_job_ids,omitempty" audit:"record"`
	RowCount         int      `json:"row_count"`
	ResultSize       int      `json:"result_size"`
	ResultSHA256     string   `json:"result_sha256" audit:"digest"`
}

// Citation ties an answer's "[n]" marker to the chunk it cites.
type Citation struct {
	Ref             int    `json:"ref"`
	ChunkID         string `json:"chunk_id" audit:"record"`
	DocumentID      string `json:"document_id" audit:"record"`
	KnowledgeBaseID string `json:"knowledge_base_id" audit:"record"`
	Title           string `json:"title" audit:"content"`
}

// AnswerRecorded records the answer that ends a turn.
type AnswerRecorded struct {
	TurnID           string     `json:"turn_id" audit:"record"`
	MessageID        string     `json:"message_id" audit:"record"`
	Content          string     `json:"content" audit:"content"`
	ContentSHA256    string     `json:"content_sha256" audit:"digest"`
	Citations        []Citation `json:"citations"`
	Model            string     `json:"model" audit:"record"`
	PromptTokens     int        `json:"prompt_tokens"`
	CompletionTokens int        `json:"completion_tokens"`
}

// TurnFailed records a turn that ended without an answer.
type TurnFailed struct {
	TurnID string `json:"turn_id" audit:"record"`
	Reason string `json:"reason" audit:"record"`
}

// TurnCancelled records a turn its caller abandoned (a disconnected
// stream, a cancelled request).
type TurnCancelled struct {
	TurnID string `json:"turn_id" audit:"record"`
	Reason string `json:"reason" audit:"record"`
}

func (ConversationStarted) EventType() string  { return "ConversationStarted" }
func (ConversationArchived) EventType() string { return "ConversationArchived" }
func (TurnStarted) EventType() string          { return "TurnStarted" }
func (ToolCallDecided) EventType() string      { return "ToolCallDecided" }
func (ToolCallCompleted) EventType() string    { return "ToolCallCompleted" }
func (AnswerRecorded) EventType() string       { return "AnswerRecorded" }
func (TurnFailed) EventType() string           { return "TurnFailed" }
func (TurnCancelled) EventType() string        { return "TurnCancelled" }

// Events returns a zero value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{&ConversationStarted{}, &ConversationArchived{}, &TurnStarted{},
		&ToolCallDecided{}, &ToolCallCompleted{}, &AnswerRecorded{}, &TurnFailed{}, &TurnCancelled{}}
}
