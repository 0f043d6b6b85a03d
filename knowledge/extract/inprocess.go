package extract

import "context"

// InProcessPDF returns the in-process engine, with l's limits, as a
// PDFExtractor, so that a caller can wrap it (to bound how many run at
// once, say) the way it wraps [SubprocessPDF].
func InProcessPDF(l Limits) PDFExtractor {
	l = l.withDefaults()
	l.PDF = nil
	return func(ctx context.Context, data []byte) (string, error) {
		return l.pdfText(ctx, data)
	}
}
