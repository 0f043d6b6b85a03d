package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/knowledge"
)

// TestOneOrganizationsBacklogDoesNotHoldUpAnother: an organization uploads
// eight documents whose ingestion is stuck; another organization's
// document, uploaded after them, is ingested at once, and the stuck
// organization holds exactly its share of the pool.
func TestOneOrganizationsBacklogDoesNotHoldUpAnother(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	inside, most := 0, 0
	h := openHarnessWith(t, t.TempDir(), func(cfg *app.Config) {
		cfg.Ingestion = app.IngestionConfig{Workers: 3, PerOrg: 2}
		cfg.Chunker = func(text string) []knowledge.Chunk {
			if strings.HasPrefix(text, "stuck") {
				mu.Lock()
				inside++
				most = max(most, inside)
				mu.Unlock()
				defer func() {
					mu.Lock()
					inside--
					mu.Unlock()
				}()
				select {
				case <-release:
				case <-time.After(30 * time.Second):
				}
			}
			return []knowledge.Chunk{{Text: text}}
		}
	})
	defer close(release)
	_, slow := h.createOrg("Slow", "sam")
	_, quick := h.createOrg("Quick", "quinn")
	slowKB, quickKB := h.createKB(slow, "Archive"), h.createKB(quick, "Handbook")
	var stuck []string
	for i := range 8 {
		var doc kbDoc
		h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+slowKB+"/documents", slow,
			map[string]any{"title": fmt.Sprintf("Scan %d", i), "content_type": "text/plain", "content": fmt.Sprintf("stuck scan %d", i)}).json(t, &doc)
		stuck = append(stuck, doc.ID)
	}
	var doc kbDoc
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+quickKB+"/documents", quick,
		map[string]any{"title": "Leave", "content_type": "text/plain", "content": "Leave is twenty days."}).json(t, &doc)
	start := time.Now()
	if got := h.waitDoc(quick, quickKB, doc.ID); got.State != "ready" {
		t.Fatalf("the other organization's document = %+v after %s, want ready while the backlog is stuck", got, time.Since(start))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := most
		mu.Unlock()
		if n > 2 {
			t.Fatalf("the stuck organization ran %d ingestions at once, want at most its share of 2", n)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stuck organization ran %d ingestions at once, want its share of 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pending := 0
	for _, id := range stuck {
		var d kbDoc
		h.must(http.StatusOK, http.MethodGet, "/v1/knowledge-bases/"+slowKB+"/documents/"+id, slow, nil).json(t, &d)
		if d.State == "pending" {
			pending++
		}
	}
	if pending != len(stuck) {
		t.Fatalf("%d of %d stuck documents pending; the test did not hold the backlog", pending, len(stuck))
	}
}

// TestIngestionCutShortByAStopIsResumed: a document whose ingestion is
// running when the server stops stays pending in the log (the process's
// checkpoint already passed it); the next start hands it to the pool
// again and it becomes ready.
func TestIngestionCutShortByAStopIsResumed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := openHarnessWith(t, dir, func(cfg *app.Config) {
		cfg.Chunker = func(text string) []knowledge.Chunk {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			return []knowledge.Chunk{{Text: text}}
		}
	})
	_, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	var doc kbDoc
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Leave", "content_type": "text/plain", "content": "Leave is twenty days."}).json(t, &doc)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("ingestion never started")
	}
	// The stop cancels the job's context first; the chunker, which does
	// not watch it, returns a moment later, and the job records nothing.
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	h.close()

	h = openHarness(t, dir)
	if got := h.waitDoc(owner, kb, doc.ID); got.State != "ready" {
		t.Fatalf("the document after a restart = %+v, want ready", got)
	}
}
