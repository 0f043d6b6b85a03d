package app_test

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// apiJob is what the tests read of a job.
type apiJob struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Subject     string   `json:"subject"`
	State       string   `json:"state"`
	Attempts    int      `json:"attempts"`
	Items       int      `json:"items"`
	Result      string   `json:"result"`
	SubmittedBy string   `json:"submitted_by"`
	OnBehalfOf  []string `json:"on_behalf_of"`
}

// TestJobsShowWhatTheProcessesDid: a document's ingestion is a job that an
// auditor reads back (kind, state, attempts, outcome, for whom), filters
// by kind and state, and that a viewer and another organization cannot
// read.
func TestJobsShowWhatTheProcessesDid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	viewer := h.addMember(org, owner, "victor", "viewer")
	_, stranger := h.createOrg("Other", "mallory")
	kb := h.createKB(owner, "Handbook")
	var doc kbDoc
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Leave", "content_type": "text/plain", "content": "Leave is twenty days a year."}).json(t, &doc)
	if got := h.waitDoc(owner, kb, doc.ID); got.State != "ready" {
		t.Fatalf("document = %+v, want ready", got)
	}

	// The job settles just after the document it chunked.
	var list struct {
		Items []apiJob `json:"items"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h.must(http.StatusOK, http.MethodGet, "/v1/jobs", auditor, nil).json(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("jobs = %+v, want the one ingestion", list.Items)
		}
		if list.Items[0].State == "succeeded" || time.Now().After(deadline) {
			break
		}
	}
	job := list.Items[0]
	if job.Kind != "knowledge.ingestion" || job.State != "succeeded" || job.Attempts != 1 || job.Items < 1 ||
		job.SubmittedBy != "ingestion" || !slices.Contains(job.OnBehalfOf, "alice") {
		t.Errorf("ingestion job = %+v, want succeeded at the first attempt with its chunks, by ingestion for alice", job)
	}
	var one apiJob
	h.must(http.StatusOK, http.MethodGet, "/v1/jobs/"+job.ID, auditor, nil).json(t, &one)
	if one.ID != job.ID || one.State != job.State || one.Subject != job.Subject {
		t.Errorf("job read alone = %+v, listed %+v", one, job)
	}

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"?kind=knowledge.ingestion&state=succeeded", 1},
		{"?kind=analytics.query", 0},
		{"?state=failed", 0},
	} {
		h.must(http.StatusOK, http.MethodGet, "/v1/jobs"+tc.query, auditor, nil).json(t, &list)
		if len(list.Items) != tc.want {
			t.Errorf("jobs%s = %+v, want %d", tc.query, list.Items, tc.want)
		}
	}
	h.must(http.StatusUnprocessableEntity, http.MethodGet, "/v1/jobs?state=stuck", auditor, nil)
	h.must(http.StatusBadRequest, http.MethodGet, "/v1/jobs?state=failed&state=running", auditor, nil)

	// Jobs are the record: audit:read, not membership, reads them.
	h.must(http.StatusForbidden, http.MethodGet, "/v1/jobs", viewer, nil)
	h.must(http.StatusForbidden, http.MethodGet, "/v1/jobs/"+job.ID, viewer, nil)
	h.must(http.StatusNotFound, http.MethodGet, "/v1/jobs/"+job.ID, stranger, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/jobs", stranger, nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("another organization lists %+v", list.Items)
	}
}
