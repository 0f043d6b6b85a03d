package conversation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/domain/access"
)

// Tool is one capability a bot may be granted. Run is called only after
// the call was allowed: the tool is in the bot's grants, the arguments
// match Schema, and the effective principal holds Permission. Run decides
// on the resources it touches itself and returns a *DeniedError for one
// the principal or the bot may not use.
type Tool struct {
	Name        string
	Description string
	// Schema is the JSON Schema of the arguments.
	Schema     string
	Permission access.Permission
	Run        func(ctx context.Context, call Call) (Output, error)

	compiled *jsonschema.Schema
}

// Call is one allowed tool call, as Run sees it.
type Call struct {
	ID string
	// As is the effective principal the call runs with.
	As        access.Principal
	Bot       Bot
	Arguments json.RawMessage
	// turn and chain give ask_bot the turn to run a nested bot in and
	// the bots from the conversation's down to the caller.
	turn  *turn
	chain []Bot
}

// Bot is the configuration of a bot taking part in a turn.
type Bot struct {
	ID, Instructions string
	KnowledgeBases   []string
	DataSources      []string
	Tools            []string
	Permissions      access.PermissionSet
}

// Passage is text a tool returned that an answer may cite.
type Passage struct {
	ChunkID, DocumentID, KnowledgeBaseID, Title, Text string
}

// Output is what a tool returns: the JSON the model reads (Result, plus the
// passages, which the turn numbers for citation) and what the record keeps
// (ids, counts and a one-line summary; never the text).
type Output struct {
	Result           map[string]any
	Passages         []Passage
	Summary          string
	KnowledgeBaseIDs []string
	DocumentIDs      []string
	ChunkIDs         []string
	BotIDs           []string
	DataSourceIDs    []string
	AnalyticsJobIDs  []string
	Rows             int
}

// DeniedError is a tool call refused on a resource.
type DeniedError struct {
	Decision access.Decision
	Resource string
}

func (e *DeniedError) Error() string { return e.Decision.Reason() }

// ToolError is a tool's failure told to the model and the record as
// Message, which must carry no secret and no content the record may not
// keep. Any other error of a tool is reported without its text.
type ToolError struct {
	Message string
}

func (e *ToolError) Error() string { return e.Message }

// Registry holds the tools bots may be granted.
type Registry struct {
	tools map[string]*Tool
}

// NewRegistry compiles every tool's schema; a tool with an invalid schema
// or a name registered twice is a programming error, returned.
func NewRegistry(tools ...Tool) (*Registry, error) {
	r := &Registry{tools: map[string]*Tool{}}
	for _, t := range tools {
		if _, dup := r.tools[t.Name]; dup {
			return nil, fmt.Errorf("conversation: tool %q registered twice", t.Name)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(t.Schema))
		if err != nil {
			return nil, fmt.Errorf("conversation: tool %q schema: %w", t.Name, err)
		}
		c := jsonschema.NewCompiler()
		url := "tool:" + t.Name
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("conversation: tool %q schema: %w", t.Name, err)
		}
		if t.compiled, err = c.Compile(url); err != nil {
			return nil, fmt.Errorf("conversation: tool %q schema: %w", t.Name, err)
		}
		r.tools[t.Name] = &t
	}
	return r, nil
}

// Lookup returns the tool named name.
func (r *Registry) Lookup(name string) (*Tool, bool) {
	t, ok := r.tools[name]
	return t, ok
}

// Names lists the registered tools, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.tools))
	for n := range r.tools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// offered lists the tools a bot is granted that exist, as the model sees
// them.
func (r *Registry) offered(bot Bot) []llm.Tool {
	var out []llm.Tool
	for _, name := range bot.Tools {
		if t, ok := r.tools[name]; ok {
			out = append(out, llm.Tool{Name: t.Name, Description: t.Description, Parameters: json.RawMessage(t.Schema)})
		}
	}
	return out
}

// validate checks arguments against the tool's schema. Arguments must be
// one JSON object.
func (t *Tool) validate(arguments json.RawMessage) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(arguments))
	if err != nil {
		return fmt.Errorf("arguments are not JSON")
	}
	if err := t.compiled.Validate(inst); err != nil {
		return fmt.Errorf("arguments do not match the schema")
	}
	return nil
}

// decodeArguments decodes validated arguments into v.
func decodeArguments(arguments json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(arguments))
	return dec.Decode(v)
}
