package app_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/quota"
)

func TestZZReviewPDFViaJSON(t *testing.T) {
	pdf, err := os.ReadFile("/tmp/zz_slow.pdf")
	if err != nil {
		t.Skip(err)
	}
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	h.setQuotas(org, map[string]any{"concurrent_pdf_parses": 1, "concurrent_uploads": 8})
	kb := h.createKB(owner, "Docs")
	path := "/v1/knowledge-bases/" + kb + "/documents"

	multi := func() (int, string) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		p, _ := mw.CreateFormFile("file", "slow.pdf")
		p.Write(pdf)
		mw.Close()
		r := h.do(http.MethodPost, path, owner, body.Bytes(), "Content-Type", mw.FormDataContentType())
		return r.status, string(r.body)
	}
	jsonUp := func(ct string) (int, string) {
		r := h.do(http.MethodPost, path, owner, map[string]any{"title": "x", "content": string(pdf), "content_type": ct})
		return r.status, string(r.body)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	log := func(what string, st int, body string) {
		mu.Lock()
		defer mu.Unlock()
		if len(body) > 160 {
			body = body[:160]
		}
		t.Logf("%-28s t=%v status=%d %s", what, time.Since(start).Round(100*time.Millisecond), st, body)
	}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); st, b := jsonUp("application/x-pdf"); log("json application/x-pdf", st, b) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); st, b := jsonUp("Application/PDF"); log("json Application/PDF", st, b) }()
	time.Sleep(time.Second)
	t.Logf("org PDF parses in progress (quota book): %d", h.app.Quotas.InProgress(org, quota.WorkPDFParses))
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); st, b := multi(); log("multipart", st, b) }()
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	t.Logf("org PDF parses in progress (quota book): %d", h.app.Quotas.InProgress(org, quota.WorkPDFParses))
	wg.Wait()
}
