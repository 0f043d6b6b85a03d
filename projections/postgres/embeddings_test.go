package postgres

import (
	"context"
	"testing"

	"github.com/palisadehq/palisade/knowledge/embeddings/embeddingstest"
)

func TestEmbeddingStoreContract(t *testing.T) {
	t.Parallel()
	stores := map[embeddingstest.Store]*bundle{}
	var mu = make(chan struct{}, 1)
	embeddingstest.Run(t, func(t *testing.T) embeddingstest.Store {
		b := setup(t)
		b.db.requireVector(t)
		mu <- struct{}{}
		stores[b.store.Embeddings()] = b
		<-mu
		return b.store.Embeddings()
	}, embeddingstest.Options{Reopen: func(t *testing.T, s embeddingstest.Store) embeddingstest.Store {
		mu <- struct{}{}
		b := stores[s]
		<-mu
		b.store.Close()
		again, err := Open(context.Background(), b.db.appURL, b.schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(again.Close)
		return again.Embeddings()
	}})
}
