package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// Comparing answers and scanning for leaks.

var isoCorrelationField = regexp.MustCompile(`,?"correlation_id":"[^"]*"`)

// isoNormalize removes the correlation_id field, which differs per request.
func isoNormalize(b []byte) string { return string(isoCorrelationField.ReplaceAll(b, nil)) }

// isoHeadersDiffer lists the headers that differ, ignoring the ones that
// differ per request.
func isoHeadersDiffer(a, b http.Header) []string {
	var diff []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		if k == "Date" || k == "X-Correlation-Id" {
			continue
		}
		if !slices.Equal(a.Values(k), b.Values(k)) {
			diff = append(diff, fmt.Sprintf("%s: %q vs %q", k, a.Values(k), b.Values(k)))
		}
	}
	sort.Strings(diff)
	return diff
}

// isoSameAnswer fails unless got answers exactly like base (an unknown id).
func isoSameAnswer(t testing.TB, what string, got, base response) {
	t.Helper()
	if got.status != base.status || isoNormalize(got.body) != isoNormalize(base.body) {
		t.Errorf("existence oracle: %s answers %d %s\nbut the same call with an unknown id answers %d %s",
			what, got.status, bytes.TrimSpace(got.body), base.status, bytes.TrimSpace(base.body))
		return
	}
	if d := isoHeadersDiffer(got.header, base.header); len(d) > 0 {
		t.Errorf("existence oracle: %s answers with other headers than for an unknown id: %v", what, d)
	}
}

// isoEchoField matches the fields of an audit event that record what the
// caller itself sent: the path and resource of an AccessDenied event, the
// query of a KnowledgeSearched event.
// isoAuditRecord reports whether path reads the audit record (events,
// narratives, the export), which holds the caller's own requests.
func isoAuditRecord(path string) bool {
	return strings.HasPrefix(path, "/v1/audit/events") || strings.HasPrefix(path, "/v1/audit/narratives") ||
		strings.HasPrefix(path, "/v1/audit/export")
}

var isoEchoField = regexp.MustCompile(`"(?:path|resource|query)":"[^"]*"`)

// isoEchoText and isoEchoArgs match the fields of conversations and of
// audit events that record what the caller wrote to a bot: a question's
// content, and the arguments its model took from it (a JSON string, or in
// a stream's tool.call event a JSON object).
var (
	isoEchoText = regexp.MustCompile(`"(?:content|arguments)":"(?:[^"\\]|\\.)*"`)
	isoEchoArgs = regexp.MustCompile(`"arguments":\{[^{}]*\}`)
)

type isoLeak struct {
	ex      isoExchange
	needle  string
	excerpt string
}

// isoFindLeaks scans the raw headers and bodies of exchanges for needles.
// The only bytes it skips are, inside audit responses, the path and
// resource fields of the callers' own denied attempts that record a path
// the same callers requested, and the query of their own searches; and,
// inside audit and conversation responses, the content of the callers'
// own questions to their bots and the tool arguments taken from them
// (echoes holds those paths, queries, questions and arguments): an org's
// record may say which path its own member asked for, what it searched
// for and what it wrote to a bot, identifiers of other orgs included.
func isoFindLeaks(exchanges []isoExchange, needles []string, echoes map[string]bool) []isoLeak {
	var leaks []isoLeak
	for _, ex := range exchanges {
		var hay bytes.Buffer
		keys := make([]string, 0, len(ex.header))
		for k := range ex.header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range ex.header[k] {
				fmt.Fprintf(&hay, "%s: %s\n", k, v)
			}
		}
		body := ex.body
		if p, q, ok := strings.Cut(ex.path, "?"); ok && p == "/v1/audit/access" {
			// The access review names what it was asked about (the
			// subject or the resource of the query): an echo, not a leak.
			body = isoAccessEchoes(body, q)
		}
		if isoAuditRecord(ex.path) && len(echoes) > 0 {
			body = isoEchoField.ReplaceAllFunc(body, func(m []byte) []byte {
				_, v, _ := strings.Cut(string(m), `":"`)
				v = strings.TrimSuffix(v, `"`)
				if echoes[v] || echoes["/v1/"+v] {
					return []byte(`"echo":"-"`)
				}
				return m
			})
		}
		if len(echoes) > 0 && (isoAuditRecord(ex.path) || strings.HasPrefix(ex.path, "/v1/conversations")) {
			echoed := func(m []byte, decode bool) []byte {
				_, raw, _ := bytes.Cut(m, []byte(":"))
				v := string(raw)
				if decode && json.Unmarshal(raw, &v) != nil {
					return m
				}
				if echoes[v] {
					return []byte(`"echo":"-"`)
				}
				return m
			}
			body = isoEchoText.ReplaceAllFunc(body, func(m []byte) []byte { return echoed(m, true) })
			body = isoEchoArgs.ReplaceAllFunc(body, func(m []byte) []byte { return echoed(m, false) })
		}
		hay.Write(body)
		data := hay.Bytes()
		for _, n := range needles {
			if i := bytes.Index(data, []byte(n)); i >= 0 {
				lo, hi := max(0, i-80), min(len(data), i+len(n)+80)
				leaks = append(leaks, isoLeak{ex: ex, needle: n, excerpt: string(data[lo:hi])})
			}
		}
	}
	return leaks
}

// isoAccessEchoes blanks, in an access review's answer, the subject and
// the resource the query asked about.
func isoAccessEchoes(body []byte, rawQuery string) []byte {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return body
	}
	for _, name := range []string{"subject", "resource"} {
		if v := q.Get(name); v != "" {
			asked, _ := json.Marshal(v)
			body = bytes.Replace(body, []byte(`{"`+name+`":`+string(asked)), []byte(`{"`+name+`":"echo"`), 1)
		}
	}
	return body
}

func isoReportLeaks(t testing.TB, who string, leaks []isoLeak) {
	t.Helper()
	for i, l := range leaks {
		if i == 25 {
			t.Errorf("… and %d more leaks", len(leaks)-i)
			return
		}
		t.Errorf("LEAK to %s: %s %s (%d, caller %s) contains %q:\n…%s…", who, l.ex.method, l.ex.path, l.ex.status, l.ex.caller, l.needle, l.excerpt)
	}
}

// isoNeedles is every identifier of the victims, with the correlation ids
// of every request they made so far.
func isoNeedles(t testing.TB, w *isoWorld, victims ...*isoOrg) []string {
	t.Helper()
	var out []string
	for _, v := range victims {
		out = append(out, v.staticNeedles()...)
		out = append(out, "Secret Corp", strings.ToUpper(v.label)+"-CANARY")
		for _, e := range w.rec.by(v.label + "/") {
			if c := e.header.Get("X-Correlation-Id"); c != "" {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	for _, n := range out {
		if len(n) < 8 {
			t.Fatalf("needle %q is too short to scan for reliably", n)
		}
	}
	return out
}

// isoEchoes is every URL path the exchanges requested, every search query
// they sent, and what they wrote to bots: each question, each tool line's
// arguments, the values those name and the resources a refusal of them
// records, and the bots they started conversations with.
func isoEchoes(exchanges []isoExchange) map[string]bool {
	out := map[string]bool{}
	for _, e := range exchanges {
		p, _, _ := strings.Cut(e.path, "?")
		out[p] = true
		if strings.HasPrefix(p, "/v1/conversations") && e.method == http.MethodPost && e.request != nil {
			isoBotEchoes(e.request, out)
		}
		if p == "/v1/knowledge-bases/search" && e.request != nil {
			var body struct {
				Query string `json:"query"`
			}
			if json.Unmarshal(e.request, &body) == nil && body.Query != "" {
				out[strings.TrimSpace(body.Query)] = true
			}
		}
	}
	return out
}

// isoBotEchoes adds to out what a request body wrote to a bot.
func isoBotEchoes(request []byte, out map[string]bool) {
	var body struct {
		BotID   string `json:"bot_id"`
		Content string `json:"content"`
	}
	if json.Unmarshal(request, &body) != nil {
		return
	}
	if body.BotID != "" {
		out["bots/"+body.BotID] = true
	}
	if body.Content == "" {
		return
	}
	out[body.Content] = true
	for line := range strings.SplitSeq(body.Content, "\n") {
		rest, ok := strings.CutPrefix(line, "@tool ")
		if !ok {
			continue
		}
		_, args, _ := strings.Cut(rest, " ")
		out[args] = true
		var named map[string]any
		if json.Unmarshal([]byte(args), &named) != nil {
			continue
		}
		for _, v := range named {
			values, _ := v.([]any)
			if s, ok := v.(string); ok {
				values = []any{s}
			}
			for _, x := range values {
				if s, ok := x.(string); ok {
					out[s] = true
					for _, resource := range []string{"knowledge-bases/", "documents/", "bots/"} {
						out[resource+s] = true
					}
				}
			}
		}
	}
}
