// Package knowledge owns knowledge bases and their documents: a knowledge
// base ("kb-{orgID}_{kbID}") with its name and per-resource grants, and each
// document ("doc-{orgID}_{docID}") with its versions, its chunks as the
// ingestion process recorded them, and its deletion. Every chunk a search
// can return is defined by a DocumentChunked event.
//
// It must never do I/O: extracting text, chunking and embedding happen
// elsewhere; this package only decides what may be recorded.
package knowledge
