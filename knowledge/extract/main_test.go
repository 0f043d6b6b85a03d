package extract_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/palisadehq/palisade/knowledge/extract"
)

// TestMain lets the test binary stand in for "palisade extract-pdf", so
// that the subprocess tests need no other binary: run with the argument
// extract-pdf it is the PDF child, with the test-only arguments below a
// child that misbehaves.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case "extract-pdf":
			os.Exit(extract.RunPDFChild(os.Stdin, os.Stdout, os.Stderr))
		case "extract-pdf-hang": // reads the PDF, then never answers
			_, _ = io.Copy(io.Discard, os.Stdin)
			time.Sleep(time.Hour)
			os.Exit(0)
		case "extract-pdf-flood": // answers without end
			chunk := make([]byte, 64<<10)
			for i := range chunk {
				chunk[i] = 'a'
			}
			for {
				if _, err := os.Stdout.Write(chunk); err != nil {
					os.Exit(1)
				}
			}
		}
	}
	os.Exit(m.Run())
}

// childCommand runs this test binary as a PDF child; mode is extract-pdf or
// one of the misbehaving modes above.
func childCommand(mode string) []string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return []string{exe, mode}
}
