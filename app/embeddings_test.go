package app_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/app"
)

// embeddingsEndpoint is an in-test OpenAI-compatible embeddings endpoint
// (POST /v1/embeddings) that computes its vectors with the hashing
// embedder and counts every request and text it serves.
type embeddingsEndpoint struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
	texts []string
}

func newEmbeddingsEndpoint(t *testing.T) *embeddingsEndpoint {
	t.Helper()
	e := &embeddingsEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *embeddingsEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.calls++
	e.texts = append(e.texts, req.Input...)
	e.mu.Unlock()
	vectors, err := embed.NewHashing(embed.DefaultDimensions).Embed(r.Context(), req.Input)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	type item struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	resp := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
	}{Object: "list", Model: req.Model}
	for i, v := range vectors {
		resp.Data = append(resp.Data, item{Index: i, Embedding: v})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// take returns the calls and texts served since the last take.
func (e *embeddingsEndpoint) take() (calls int, texts []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	calls, texts = e.calls, e.texts
	e.calls, e.texts = 0, nil
	return calls, texts
}

func (e *embeddingsEndpoint) config(model string) func(*app.Config) {
	return func(c *app.Config) { c.Embeddings = app.EmbeddingsConfig{URL: e.URL, Model: model} }
}

// oneRanking is the best fused score a chunk ranked by only one of the
// two rankings can have (reciprocal rank fusion, k = 60): a higher score
// means the vector ranking found the chunk too.
const oneRanking = 1.0 / 61

const leavePolicy = "# Parental leave\n\nParental leave lasts sixteen weeks, paid in full, for every parent.\n\n" +
	"# Travel\n\nBook trains two weeks ahead; flights need the approval of a director."

// TestRestartEmbedsNothingTwice adds documents through an embeddings
// endpoint, restarts Palisade on the same data directory, and counts what
// reaches the endpoint: nothing for chunks it embedded before, whatever
// the read models (in memory, rebuilt from the log; or in PostgreSQL), and
// search still ranks those chunks by their vectors. A document whose chunks
// repeat embedded text costs only its new text.
func TestRestartEmbedsNothingTwice(t *testing.T) {
	t.Parallel()
	endpoint := newEmbeddingsEndpoint(t)
	dir := t.TempDir()

	h := openHarnessWith(t, dir, endpoint.config("test-embedding-model"))
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	leave := h.addDoc(owner, kb, "Leave", "text/markdown", leavePolicy)
	other := h.addDoc(owner, kb, "Security", "text/plain", "Rotate the signing keys every ninety days.")
	if leave.State != "ready" || other.State != "ready" {
		t.Fatalf("documents = %+v, %+v, want ready", leave, other)
	}
	calls, texts := endpoint.take()
	if calls == 0 || len(texts) < leave.Chunks+other.Chunks {
		t.Fatalf("ingestion made %d embedding calls for %d texts, want at least the %d chunks", calls, len(texts), leave.Chunks+other.Chunks)
	}
	h.close()

	h = openHarnessWith(t, dir, endpoint.config("test-embedding-model"))
	owner = h.userToken(org, "alice")
	if calls, texts := endpoint.take(); calls != 0 {
		t.Fatalf("the restart made %d embedding calls (%d texts), want none", calls, len(texts))
	}
	res := h.search(owner, map[string]any{"query": "parental leave weeks", "knowledge_base_ids": []string{kb}})
	if len(res.Results) == 0 || res.Results[0].DocumentID != leave.ID {
		t.Fatalf("search after the restart = %+v, want the leave policy first", res.Results)
	}
	if res.Results[0].Score <= oneRanking {
		t.Fatalf("top score %v: the chunk was not ranked by its vector", res.Results[0].Score)
	}
	if calls, texts := endpoint.take(); calls != 1 || len(texts) != 1 || texts[0] != "parental leave weeks" {
		t.Fatalf("the search made %d embedding calls for %q, want one for its query", calls, texts)
	}

	// A new document that repeats an embedded paragraph embeds only the rest.
	again := h.addDoc(owner, kb, "Leave, again", "text/plain",
		"Parental leave lasts sixteen weeks, paid in full, for every parent.\n\nDesks are free to book on Fridays.")
	if again.State != "ready" {
		t.Fatalf("third document = %+v", again)
	}
	_, texts = endpoint.take()
	for _, text := range texts {
		if strings.Contains(text, "sixteen weeks") && !strings.Contains(text, "Desks") {
			t.Errorf("an embedded paragraph was sent again: %q", text)
		}
	}
}

// TestLostEmbeddingStoreLeavesChunksKeywordSearchable deletes the embedded
// default's embedding store between two runs: the restart still calls no
// embeddings endpoint (the projection never embeds), and the chunks are
// found by keyword until they are re-embedded.
func TestLostEmbeddingStoreLeavesChunksKeywordSearchable(t *testing.T) {
	if testReadModels() == "postgres" {
		t.Skip("the embedding store is a PostgreSQL table here, not the embedded default's file")
	}
	t.Parallel()
	endpoint := newEmbeddingsEndpoint(t)
	dir := t.TempDir()
	h := openHarnessWith(t, dir, endpoint.config("test-embedding-model"))
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	leave := h.addDoc(owner, kb, "Leave", "text/markdown", leavePolicy)
	h.close()
	endpoint.take()

	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, "embeddings.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	// The read models' snapshot holds the vectors the chunks were
	// projected with; this is about a rebuild from the log, which reads
	// them from the embedding store. (A stop writes no snapshot when its
	// groups are not at one position, as on the Kafka bus it may not be.)
	if err := os.Remove(filepath.Join(dir, snapshotFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	h = openHarnessWith(t, dir, endpoint.config("test-embedding-model"))
	owner = h.userToken(org, "alice")
	if calls, _ := endpoint.take(); calls != 0 {
		t.Fatalf("the restart made %d embedding calls, want none", calls)
	}
	res := h.search(owner, map[string]any{"query": "parental leave weeks", "knowledge_base_ids": []string{kb}})
	if len(res.Results) == 0 || res.Results[0].DocumentID != leave.ID {
		t.Fatalf("search = %+v, want the leave policy by keyword", res.Results)
	}
	if res.Results[0].Score > oneRanking {
		t.Fatalf("top score %v: a chunk without a stored vector was ranked by one", res.Results[0].Score)
	}
}

// TestEmbeddingModelMismatchRefusedAtStart builds a knowledge base with one
// embedding model and restarts with another: Open refuses, naming the base
// and what to do, rather than mixing two models' vectors in one base.
func TestEmbeddingModelMismatchRefusedAtStart(t *testing.T) {
	t.Parallel()
	endpoint := newEmbeddingsEndpoint(t)
	dir := t.TempDir()
	h := openHarnessWith(t, dir, endpoint.config("model-a"))
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	archived := h.createKB(owner, "Old")
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/knowledge-bases/"+archived, owner, nil)
	h.close()

	for name, configure := range map[string]func(*app.Config){
		"another model":                 endpoint.config("model-b"),
		"the built-in hashing embedder": nil,
	} {
		a, err := openApp(t, dir, configure)
		if err == nil {
			_ = a.Close()
			t.Fatalf("%s: Open succeeded over a base built with model-a", name)
		}
		msg := err.Error()
		if !errors.Is(err, app.ErrEmbeddingMismatch) || !strings.Contains(msg, kb) || !strings.Contains(msg, org) ||
			!strings.Contains(msg, "model-a") || !strings.Contains(msg, "PALISADE_EMBEDDINGS_MODEL") {
			t.Errorf("%s: Open = %v, want ErrEmbeddingMismatch naming the base, its org and model, and what to do", name, err)
		}
		if strings.Contains(msg, archived) {
			t.Errorf("%s: the archived base is named: %v", name, err)
		}
	}

	// The model the bases were built with starts.
	h = openHarnessWith(t, dir, endpoint.config("model-a"))
	h.close()
}
