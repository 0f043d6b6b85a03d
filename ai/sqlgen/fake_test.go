package sqlgen_test

import (
	"context"
	"sync"

	"github.com/palisadehq/palisade/ai/llm"
)

// fakeModel answers every request with answer (or err), and records the
// requests.
type fakeModel struct {
	answer string
	calls  []llm.ToolCall
	err    error

	mu   sync.Mutex
	reqs []llm.Request
}

func (f *fakeModel) Name() string { return "fake-sql-1" }

func (f *fakeModel) Complete(ctx context.Context, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return llm.Response{}, err
	}
	if f.err != nil {
		return llm.Response{}, f.err
	}
	return llm.Response{Content: f.answer, ToolCalls: f.calls}, nil
}

func (f *fakeModel) requests() []llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]llm.Request(nil), f.reqs...)
}
