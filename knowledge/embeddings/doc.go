// Package embeddings owns the durable store of chunk embeddings: vectors
// kept per organization by (model, chunk hash: the chunk's keyed digest,
// see commands.WithDigestKeys), so that a text embedded
// once with a model is never sent to an embeddings endpoint again — not on
// a restart, not on a rebuild of the read models. The ingestion process
// writes it (after embedding what it lacks); the knowledge projection only
// reads it.
//
// Adapters: [SQLite], one file in the data directory for the embedded
// default, and [Memory], for tests and throw-away rebuilds. The PostgreSQL
// adapter lives with the other PostgreSQL tables in projections/postgres.
// Every adapter passes the contract suite in [embeddingstest].
//
// Keys are scoped to one organization (an [access.Scope]): a store shared
// across organizations would tell one tenant, by the absence of an
// embedding call, that another holds the same text.
//
// This package must never call an embedder or the network, and never read
// another organization's vectors.
package embeddings

import (
	"errors"

	"github.com/palisadehq/palisade/domain/access"
)

// ErrEmptyVector: a vector to store has no components.
var ErrEmptyVector = errors.New("embeddings: empty vector")

func orgOf(scope access.Scope) (string, error) {
	if !scope.Valid() {
		return "", access.ErrNoScope
	}
	return scope.OrgID(), nil
}
