package main

import (
	"io"
	"os"

	"github.com/palisadehq/palisade/knowledge/extract"
)

// extractPDF is the hidden "palisade extract-pdf" command: the child
// process in which serve reads uploaded PDFs (see extract.SubprocessPDF).
// It reads one PDF from standard input, writes its text to standard output,
// and exits with the code extract.RunPDFChild chooses, which tells the
// parent what went wrong. A PDF that crashes the parser crashes this
// process only; the server turns that into a failed upload.
func extractPDF(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		io.WriteString(stderr, "usage: palisade extract-pdf < document.pdf (used by serve; not for direct use)\n")
		os.Exit(2)
	}
	os.Exit(extract.RunPDFChild(stdin, stdout, stderr))
	return nil
}

// pdfCommand is how serve starts extract-pdf: this same binary.
func pdfCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe, "extract-pdf"}
}
