package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NothingFound is [Builtin]'s whole answer when no passage of the turn's
// tool results shares a term with the question.
const NothingFound = "I found nothing relevant in the knowledge available to me."

// builtinSearchTool is the tool the Builtin asks for once per turn to find
// passages to answer from.
const builtinSearchTool = "search_knowledge"

// maxAnswerSentences bounds a Builtin answer.
const maxAnswerSentences = 3

// Builtin is the default model: offline, deterministic and extractive. It
// needs no endpoint and no weights, so Palisade runs (and its tests run)
// with nothing but its own binary.
//
// In one turn (the messages after the last user message) it:
//
//  1. requests every tool named by a line "@tool NAME ARGUMENTS" in the
//     system messages, the last user message or this turn's tool results,
//     each name and argument bytes once per turn, whether or not NAME is
//     among the offered tools. It is deliberately gullible: tests use it to
//     play a model taken over by prompt injection, and the caller must
//     deny what it was not allowed to run;
//  2. otherwise requests "search_knowledge" with {"query": question} once,
//     when that tool is offered;
//  3. otherwise answers with at most three sentences of this turn's
//     passages (JSON objects with an integer "ref" and a string "text")
//     that share the most terms with the question, each followed by
//     " [ref]", or with [NothingFound].
//
// With no tools offered it always answers. Usage counts words, not tokens.
type Builtin struct{}

// NewBuiltin returns the builtin model. It holds no state.
func NewBuiltin() *Builtin { return &Builtin{} }

// Name is "builtin-extractive-1"; the suffix changes whenever the answers
// it gives for the same request change.
func (*Builtin) Name() string { return "builtin-extractive-1" }

// Complete answers req as described on [Builtin]. The answer is streamed to
// onDelta word by word; ctx is checked before each delta.
func (b *Builtin) Complete(ctx context.Context, req Request, onDelta DeltaFunc) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	turn := newBuiltinTurn(req.Messages)
	resp := Response{Model: b.Name(), Usage: Usage{PromptTokens: promptWords(req.Messages)}}

	if len(req.Tools) > 0 {
		calls := turn.injectedCalls(req.Messages)
		if len(calls) == 0 && hasTool(req.Tools, builtinSearchTool) && !turn.requestedNames[builtinSearchTool] {
			args, err := json.Marshal(map[string]string{"query": turn.question})
			if err != nil {
				return Response{}, err
			}
			calls = []ToolCall{{Name: builtinSearchTool, Arguments: args}}
		}
		if len(calls) > 0 {
			for i := range calls {
				calls[i].ID = "call_" + strconv.Itoa(turn.callCount+i+1)
				resp.Usage.CompletionTokens += len(strings.Fields(calls[i].Name + " " + string(calls[i].Arguments)))
			}
			resp.ToolCalls = calls
			return resp, nil
		}
	}

	resp.Content = turn.answer()
	resp.Usage.CompletionTokens = len(strings.Fields(resp.Content))
	if onDelta != nil {
		for _, piece := range strings.SplitAfter(resp.Content, " ") {
			if err := ctx.Err(); err != nil {
				return Response{}, err
			}
			if piece == "" {
				continue
			}
			if err := onDelta(piece); err != nil {
				return Response{}, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	return resp, nil
}

// builtinTurn is what the Builtin reads of the current turn.
type builtinTurn struct {
	// question is the last user message ("" when there is none).
	question string
	// hasQuestion says whether there is a user message at all.
	hasQuestion bool
	// toolResults are the contents of this turn's tool messages, in order.
	toolResults []string
	// requested holds name+"\x00"+arguments of the calls this turn already
	// requested.
	requested map[string]bool
	// requestedNames holds the names of those calls.
	requestedNames map[string]bool
	callCount      int
}

func newBuiltinTurn(msgs []Message) *builtinTurn {
	last := -1
	for i, m := range msgs {
		if m.Role == RoleUser {
			last = i
		}
	}
	t := &builtinTurn{requested: map[string]bool{}, requestedNames: map[string]bool{}}
	if last >= 0 {
		t.question, t.hasQuestion = msgs[last].Content, true
	}
	for _, m := range msgs[last+1:] {
		switch m.Role {
		case RoleAssistant:
			for _, c := range m.ToolCalls {
				t.requested[callKey(c.Name, c.Arguments)] = true
				t.requestedNames[c.Name] = true
				t.callCount++
			}
		case RoleTool:
			t.toolResults = append(t.toolResults, m.Content)
		}
	}
	return t
}

func callKey(name string, args []byte) string { return name + "\x00" + string(args) }

// injectedCalls returns the calls named by "@tool" lines that this turn has
// not requested yet, in the order the lines are read.
func (t *builtinTurn) injectedCalls(msgs []Message) []ToolCall {
	var texts []string
	for _, m := range msgs {
		if m.Role == RoleSystem {
			texts = append(texts, m.Content)
		}
	}
	if t.hasQuestion {
		texts = append(texts, t.question)
	}
	for _, content := range t.toolResults {
		texts = append(texts, jsonStrings(content)...)
		texts = append(texts, content)
	}
	seen := map[string]bool{}
	var calls []ToolCall
	for _, text := range texts {
		for line := range strings.SplitSeq(text, "\n") {
			name, args, ok := parseToolLine(line)
			if !ok {
				continue
			}
			key := callKey(name, []byte(args))
			if t.requested[key] || seen[key] {
				continue
			}
			seen[key] = true
			calls = append(calls, ToolCall{Name: name, Arguments: json.RawMessage(args)})
		}
	}
	return calls
}

// parseToolLine recognises a line "@tool NAME ARGUMENTS": NAME is
// [A-Za-z0-9._-]+ and ARGUMENTS the rest of the line, verbatim but for
// surrounding space, or "{}" when there is none.
func parseToolLine(line string) (name, args string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), "@tool")
	if !found || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return "", "", false
	}
	rest = strings.TrimLeft(rest, " \t")
	n := 0
	for n < len(rest) && isToolNameByte(rest[n]) {
		n++
	}
	if n == 0 {
		return "", "", false
	}
	args = strings.TrimSpace(rest[n:])
	if args == "" {
		args = "{}"
	}
	return rest[:n], args, true
}

func isToolNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// jsonStrings returns every string value of the JSON document content, in a
// deterministic order, or nothing when content is not JSON.
func jsonStrings(content string) []string {
	v, ok := decodeJSON(content)
	if !ok {
		return nil
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, k := range sortedKeys(v) {
				walk(v[k])
			}
		}
	}
	walk(v)
	return out
}

func decodeJSON(content string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// passage is one retrieved text the Builtin may quote.
type passage struct {
	ref  int64
	text string
}

// passages returns the passages of this turn's tool results: JSON objects,
// at any depth, with an integer "ref" and a string "text". Denials and
// errors have neither and contribute nothing.
func (t *builtinTurn) passages() []passage {
	var out []passage
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			if p, ok := asPassage(v); ok {
				out = append(out, p)
				return
			}
			for _, k := range sortedKeys(v) {
				walk(v[k])
			}
		}
	}
	for _, content := range t.toolResults {
		if v, ok := decodeJSON(content); ok {
			walk(v)
		}
	}
	return out
}

func asPassage(obj map[string]any) (passage, bool) {
	num, ok := obj["ref"].(json.Number)
	if !ok {
		return passage{}, false
	}
	ref, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return passage{}, false
	}
	text, ok := obj["text"].(string)
	if !ok {
		return passage{}, false
	}
	return passage{ref: ref, text: text}, true
}

// answer quotes the sentences of this turn's passages that share the most
// terms with the question.
func (t *builtinTurn) answer() string {
	question := terms(t.question)
	type candidate struct {
		sentence string
		ref      int64
		score    int
		order    int
	}
	var candidates []candidate
	seen := map[string]bool{}
	for _, p := range t.passages() {
		for _, s := range sentences(p.text) {
			key := strconv.FormatInt(p.ref, 10) + "\x00" + s
			if seen[key] {
				continue
			}
			seen[key] = true
			score := 0
			for term := range terms(s) {
				if question[term] {
					score++
				}
			}
			if score > 0 {
				candidates = append(candidates, candidate{s, p.ref, score, len(candidates)})
			}
		}
	}
	if len(candidates) == 0 {
		return NothingFound
	}
	slices.SortFunc(candidates, func(a, b candidate) int {
		switch {
		case a.score != b.score:
			return b.score - a.score
		case a.ref != b.ref:
			if a.ref < b.ref {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	var out bytes.Buffer
	for i, c := range candidates[:min(len(candidates), maxAnswerSentences)] {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(c.sentence)
		out.WriteString(" [")
		out.WriteString(strconv.FormatInt(c.ref, 10))
		out.WriteString("]")
	}
	return out.String()
}

// sentences splits text after ".", "!" or "?" followed by space, and at
// line breaks, with inner space collapsed.
func sentences(text string) []string {
	var out []string
	flush := func(s string) {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			out = append(out, s)
		}
	}
	start := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
			flush(text[start:i])
			start = i + 1
		case '.', '!', '?':
			if i+1 == len(text) {
				break
			}
			if r, _ := utf8.DecodeRuneInString(text[i+1:]); unicode.IsSpace(r) {
				flush(text[start : i+1])
				start = i + 1
			}
		}
	}
	flush(text[start:])
	return out
}

// terms are the lowercased words of three or more letters or digits of s,
// less common function words.
func terms(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if utf8.RuneCountInString(w) >= 3 && !isStopword(w) {
			out[w] = true
		}
	}
	return out
}

// isStopword reports the function words that say nothing about a topic.
func isStopword(w string) bool {
	switch w {
	case "about", "after", "all", "also", "and", "any", "are", "because", "been", "before",
		"being", "both", "but", "can", "could", "did", "does", "doing", "down", "each", "few",
		"for", "from", "had", "has", "have", "having", "her", "here", "hers", "him", "his", "how",
		"into", "its", "just", "more", "most", "not", "now", "off", "once", "only", "other",
		"our", "ours", "out", "over", "own", "same", "she", "should", "some", "such", "than",
		"that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this",
		"those", "through", "too", "under", "until", "very", "was", "were", "what", "when",
		"where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
		"yours":
		return true
	}
	return false
}

func hasTool(tools []Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func promptWords(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += len(strings.Fields(m.Content))
	}
	return n
}
