package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/sealing"
)

// gatedModel is the built-in model held in every call until release is
// closed: a turn that is slow without a sleep. Each call announces itself
// on calls first.
type gatedModel struct {
	llm.Builtin
	calls   chan struct{}
	release chan struct{}
}

func (m *gatedModel) Complete(ctx context.Context, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	select {
	case m.calls <- struct{}{}:
	default:
	}
	select {
	case <-m.release:
	case <-ctx.Done():
		return llm.Response{}, ctx.Err()
	}
	return m.Builtin.Complete(ctx, req, onDelta)
}

// post sends a turn with an Idempotency-Key; safe from any goroutine.
func post(h *harness, token, path, key string, body any) (response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: out}, err
}

// TestIdempotencyKeyAcrossReplicas: two replicas on one EventStoreDB log
// and one PostgreSQL schema. The same slow command sent with one key to
// both at once runs on one; the other answers 409 while it runs; then
// both replay its response, and the turn was taken once.
func TestIdempotencyKeyAcrossReplicas(t *testing.T) {
	t.Parallel()
	dirA, dirB := t.TempDir(), t.TempDir()
	owner, appURL, schema := postgresForTest(t, dirA)
	logURL := esdbForTest(t, dirA)
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	model := &gatedModel{calls: make(chan struct{}, 16), release: make(chan struct{})}
	replica := func(cfg *app.Config) {
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
		cfg.EventStoreURL = logURL
		cfg.KafkaBrokers = nil // the replicas share the log; each relays it to its own bus
		cfg.Model = model
		cfg.MasterKey = sealing.NewSecret(master.Encode()) // the replicas' shared secret
	}
	a := openHarnessWith(t, dirA, replica)
	org, ownerToken := a.createOrg("Acme", "olivia")
	alice := a.addMember(org, ownerToken, "alice", "member")
	bot := a.createBotWith(ownerToken, "HR", "Answer briefly.", map[string]any{})
	conv := a.startConversation(alice, bot)

	b := openHarnessWith(t, dirB, replica)
	// Each replica signs with its own issuer key here; the principal, and
	// so the key's scope, is the same whichever minted the token.
	aliceB := b.userToken(org, "alice")

	path := "/v1/conversations/" + conv + "/messages"
	question := map[string]any{"content": "How many vacation days do employees get?"}
	first := make(chan response, 1)
	firstErr := make(chan error, 1)
	go func() {
		r, err := post(a, alice, path, "turn-1", question)
		first <- r
		firstErr <- err
	}()
	<-model.calls // the turn runs on replica A, held in its model call

	// The same turn on replica B: refused at once, or, were it run, held in
	// the model like A's (a second call, noticed here, not waited out).
	dupDone := make(chan response, 1)
	go func() {
		r, err := post(b, aliceB, path, "turn-1", question)
		if err != nil {
			r = response{status: -1, body: []byte(err.Error())}
		}
		dupDone <- r
	}()
	select {
	case <-model.calls:
		close(model.release)
		t.Fatal("replica B ran the turn that replica A was running under the same Idempotency-Key")
	case dup := <-dupDone:
		if dup.status != http.StatusConflict || !bytes.Contains(dup.body, []byte("idempotency-key-in-use")) {
			t.Fatalf("the same turn on replica B while A runs it = %d %s, want 409 idempotency-key-in-use", dup.status, dup.body)
		}
	}
	other, err := post(b, aliceB, path, "turn-1", map[string]any{"content": "Something else?"})
	if err != nil {
		t.Fatal(err)
	}
	if other.status != http.StatusUnprocessableEntity || !bytes.Contains(other.body, []byte("idempotency-key-reused")) {
		t.Fatalf("another turn under the key on replica B = %d %s, want 422 idempotency-key-reused", other.status, other.body)
	}

	close(model.release)
	answered := <-first
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	if answered.status != http.StatusOK {
		t.Fatalf("the turn on replica A = %d %s", answered.status, answered.body)
	}
	for _, h := range []struct {
		*harness
		token string
	}{{b, aliceB}, {a, alice}} {
		again, err := post(h.harness, h.token, path, "turn-1", question)
		if err != nil {
			t.Fatal(err)
		}
		requireReplay(t, "after the turn", answered, again)
	}

	// One turn was taken: one question, one answer.
	var got conversationBody
	b.must(http.StatusOK, http.MethodGet, "/v1/conversations/"+conv, aliceB, nil).json(t, &got)
	if len(got.Messages) != 2 {
		t.Fatalf("conversation has %d messages, want one question and one answer: %+v", len(got.Messages), got.Messages)
	}
}
