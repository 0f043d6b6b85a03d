package quota_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/quota"
)

func intp(n int) *int { return &n }

// TestPDFParseCaps: an organization at its own PDF cap is refused at once
// (retry later) while another organization parses; when every parser of
// the deployment is busy, a parse waits up to GlobalWait and is then
// refused; a released slot is taken again.
func TestPDFParseCaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := quota.NewBook(quota.Config{Defaults: quota.Limits{ConcurrentPDFParses: 1}, PDFParsers: 2, GlobalWait: 50 * time.Millisecond})
	a1, err := b.Acquire(ctx, "org-a", quota.WorkPDFParses)
	if err != nil {
		t.Fatal(err)
	}
	var retry *quota.RetryError
	if _, err := b.Acquire(ctx, "org-a", quota.WorkPDFParses); !errors.As(err, &retry) || retry.RetryAfter() < time.Second {
		t.Fatalf("second parse of org-a = %v, want a RetryError", err)
	}
	b1, err := b.Acquire(ctx, "org-b", quota.WorkPDFParses)
	if err != nil {
		t.Fatalf("org-b is held up by org-a: %v", err)
	}
	// Both parsers are busy: org-c waits, then is refused.
	start := time.Now()
	if _, err := b.Acquire(ctx, "org-c", quota.WorkPDFParses); !errors.Is(err, quota.ErrBusy) {
		t.Fatalf("parse beyond the deployment's parsers = %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("refused after %s, want a wait of about GlobalWait", waited)
	}
	a1()
	a1() // releasing twice frees one slot only
	c1, err := b.Acquire(ctx, "org-c", quota.WorkPDFParses)
	if err != nil {
		t.Fatalf("a freed parser is not taken: %v", err)
	}
	if _, err := b.Acquire(ctx, "org-a", quota.WorkPDFParses); !errors.Is(err, quota.ErrBusy) {
		t.Fatalf("a double release freed a second parser: %v", err)
	}
	b1()
	c1()
}

// TestRequestRateOverride: an override replaces the default bucket of one
// organization only.
func TestRequestRateOverride(t *testing.T) {
	t.Parallel()
	b := quota.NewBook(quota.Config{Defaults: quota.Limits{RequestsPerSecond: 1, RequestBurst: 2}})
	now := time.Now()
	for i := 0; i < 2; i++ {
		if ok, _ := b.AllowRequest("org-a", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if ok, after := b.AllowRequest("org-a", now); ok || after <= 0 || after > time.Second {
		t.Fatalf("request over the burst = %v, retry after %s; want refused, ≤ 1s", ok, after)
	}
	unlimited := 0.0
	b.SetOverrides("org-b", tenancy.QuotaOverrides{RequestsPerSecond: &unlimited})
	for i := 0; i < 100; i++ {
		if ok, _ := b.AllowRequest("org-b", now); !ok {
			t.Fatal("an organization without a rate limit was refused")
		}
	}
	if ok, _ := b.AllowRequest("org-a", now); ok {
		t.Fatal("org-b's override changed org-a's bucket")
	}
}

// TestResourceQuota: the stored count is held to the effective limit.
func TestResourceQuota(t *testing.T) {
	t.Parallel()
	b := quota.NewBook(quota.Config{Defaults: quota.Limits{MaxBots: 0}})
	b.SetOverrides("org-a", tenancy.QuotaOverrides{MaxBots: intp(0)})
	if err := b.AdmitResource(context.Background(), "org-a", quota.KindBots); err != nil {
		t.Fatalf("0 is unlimited: %v", err)
	}
	if err := b.AdmitResource(context.Background(), "org-a", "widgets"); err == nil || errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("unknown kind = %v, want a plain error", err)
	}
}

// TestInProgress: InProgress counts the slots an organization's work holds,
// per kind, without taking one itself.
func TestInProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := quota.NewBook(quota.Config{Defaults: quota.Limits{ConcurrentUploads: 1}})
	if n := b.InProgress("org-a", quota.WorkUploads); n != 0 {
		t.Fatalf("InProgress of an unknown organization = %d, want 0", n)
	}
	release, err := b.Acquire(ctx, "org-a", quota.WorkUploads)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n := b.InProgress("org-a", quota.WorkUploads); n != 1 {
			t.Fatalf("InProgress with one upload = %d, want 1", n)
		}
	}
	if n := b.InProgress("org-a", quota.WorkPDFParses); n != 0 {
		t.Fatalf("InProgress of another kind = %d, want 0", n)
	}
	if n := b.InProgress("org-b", quota.WorkUploads); n != 0 {
		t.Fatalf("InProgress of another organization = %d, want 0", n)
	}
	release()
	if n := b.InProgress("org-a", quota.WorkUploads); n != 0 {
		t.Fatalf("InProgress after release = %d, want 0", n)
	}
	// Asking took no slot: the cap of one still admits an upload.
	release, err = b.Acquire(ctx, "org-a", quota.WorkUploads)
	if err != nil {
		t.Fatalf("an upload after InProgress calls was refused: %v", err)
	}
	release()
}

// TestRequestsSpentTakesNothing: asking whether the request budget is spent
// takes nothing from it and keeps nothing for an organization the book
// does not know.
func TestRequestsSpentTakesNothing(t *testing.T) {
	b := quota.NewBook(quota.Config{Defaults: quota.Limits{RequestsPerSecond: 1, RequestBurst: 2}})
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if spent, _ := b.RequestsSpent("org-a", now); spent {
		t.Fatal("an organization never seen is spent")
	}
	for range 10 {
		if spent, _ := b.RequestsSpent("org-a", now); spent {
			t.Fatal("asking spent the budget")
		}
	}
	for i := range 2 {
		if ok, _ := b.AllowRequest("org-a", now); !ok {
			t.Fatalf("request %d of a burst of 2 refused after asking", i+1)
		}
	}
	spent, after := b.RequestsSpent("org-a", now)
	if !spent || after <= 0 || after > time.Second {
		t.Fatalf("after the burst: spent %t, retry after %s; want spent, within a second", spent, after)
	}
	if spent, _ := b.RequestsSpent("org-a", now.Add(time.Second)); spent {
		t.Fatal("still spent a second later at one request a second")
	}
	if spent, _ := b.RequestsSpent("org-b", now); spent {
		t.Fatal("another organization is spent")
	}
	if _, kept := b.State().Orgs["org-b"]; kept {
		t.Error("asking about an organization the book did not know made it keep one")
	}
}
