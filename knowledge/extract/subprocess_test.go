package extract_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/knowledge/extract"
)

// subprocessLimits read PDFs in a child: this test binary, see TestMain.
var subprocessLimits = extract.Limits{PDF: extract.SubprocessPDF(childCommand("extract-pdf"), 20*time.Second, 0)}

func TestSubprocessPDF(t *testing.T) {
	t.Parallel()
	encrypted := pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [] /Count 0 >>",
		"<< /Filter /Standard /V 1 /R 2 /O <" + strings.Repeat("ab", 32) + "> /U <" + strings.Repeat("cd", 32) + "> /P -4 >>",
	}, "/Encrypt 3 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] ")
	for _, tc := range []struct {
		name string
		data []byte
		want string
		err  error
	}{
		{"hello", helloPDF, "Hello PDF", nil},
		{"two pages", textPDF("BT /F1 12 Tf (Page one) Tj ET", "BT /F1 12 Tf (Page two) Tj ET"), "Page one\n\nPage two", nil},
		{"truncated", helloPDF[:len(helloPDF)/2], "", extract.ErrMalformed},
		{"encrypted", encrypted, "", extract.ErrEncrypted},
		{"refused by a pre-check", hugeXrefTable(), "", extract.ErrMalformed},
		{"over the page limit", textPDF(make([]string, 2001)...), "", extract.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := subprocessLimits.Text(context.Background(), "application/pdf", tc.data)
			t.Logf("err = %v", err)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || strings.Contains(err.Error(), "crashed") {
					t.Fatalf("err = %v, want %v from the child, not a crash", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("text = %q, err = %v; want %q", got, err, tc.want)
			}
		})
	}
}

// PDFs that kill the process reading them, whatever it wraps the library
// in: through a child they cost that child, and the upload fails cleanly.
func TestSubprocessPDFSurvivesCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		data    []byte
		reasons []string
	}{
		// The library resolves object 2 through object stream 3, which it
		// resolves through object stream 2, ... until the stack overflows.
		{"object streams inside each other", objectStreamCycle(), []string{"stack overflow"}},
		// A cross-reference stream asking for a table of 10^12 entries,
		// with its /Size key spelt with an escape the pre-check does not
		// read: the allocation fails, which the runtime cannot survive
		// (the race detector's runtime words it differently).
		{"escaped huge Size", xrefStreamPDF("/S#69ze 1000000000000", nil), []string{"out of memory", "address space"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := subprocessLimits.Text(context.Background(), "application/pdf", tc.data)
			t.Logf("err = %v after %v", err, time.Since(start))
			if !errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), "crashed") ||
				!slices.ContainsFunc(tc.reasons, func(r string) bool { return strings.Contains(err.Error(), r) }) {
				t.Fatalf("err = %v, want ErrMalformed for a crash with one of %q", err, tc.reasons)
			}
			// Generous: a crash must end the read, however slowly a loaded
			// machine reaches it (19 s seen under load 11 for the stack
			// overflow); what it catches is a read that never ends.
			if d := time.Since(start); d > time.Minute {
				t.Fatalf("took %v", d)
			}
		})
	}
	// Still here, and still reading PDFs.
	if got, err := subprocessLimits.Text(context.Background(), "application/pdf", helloPDF); err != nil || got != "Hello PDF" {
		t.Fatalf("after the crashes: text = %q, err = %v", got, err)
	}
}

func TestSubprocessPDFTimeoutKills(t *testing.T) {
	t.Parallel()
	hang := extract.SubprocessPDF(childCommand("extract-pdf-hang"), 300*time.Millisecond, 0)
	start := time.Now()
	_, err := hang(context.Background(), helloPDF)
	// Run returns only once the child has been reaped, so returning in
	// time means the child was killed.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("returned after %v, with a 300ms timeout", d)
	}
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), "took longer") {
		t.Fatalf("err = %v, want ErrTooLarge for the time limit", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	slow := extract.SubprocessPDF(childCommand("extract-pdf-hang"), time.Hour, 0)
	start = time.Now()
	_, err = slow(ctx, helloPDF)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

func TestSubprocessPDFOutputLimit(t *testing.T) {
	t.Parallel()
	flood := extract.SubprocessPDF(childCommand("extract-pdf-flood"), time.Minute, 1<<20)
	start := time.Now()
	_, err := flood(context.Background(), helloPDF)
	if !errors.Is(err, extract.ErrTooLarge) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v, want ErrTooLarge promptly", err, time.Since(start))
	}
}

func TestSubprocessPDFNoCommand(t *testing.T) {
	t.Parallel()
	for _, command := range [][]string{nil, {"/nonexistent/palisade", "extract-pdf"}} {
		_, err := extract.SubprocessPDF(command, time.Second, 0)(context.Background(), helloPDF)
		if err == nil || errors.Is(err, extract.ErrMalformed) {
			t.Fatalf("command %q: err = %v, want a configuration error", command, err)
		}
	}
}
