package embeddings_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/palisadehq/palisade/knowledge/embeddings"
	"github.com/palisadehq/palisade/knowledge/embeddings/embeddingstest"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	embeddingstest.Run(t, func(*testing.T) embeddingstest.Store { return embeddings.NewMemory() }, embeddingstest.Options{})
}

func openSQLite(t *testing.T, path string) *embeddings.SQLite {
	t.Helper()
	s, err := embeddings.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	var paths sync.Map // store → its file
	embeddingstest.Run(t, func(t *testing.T) embeddingstest.Store {
		path := filepath.Join(t.TempDir(), "embeddings.db")
		s := openSQLite(t, path)
		paths.Store(s, path)
		return s
	}, embeddingstest.Options{Reopen: func(t *testing.T, s embeddingstest.Store) embeddingstest.Store {
		if err := s.(*embeddings.SQLite).Close(); err != nil {
			t.Fatal(err)
		}
		path, _ := paths.Load(s)
		return openSQLite(t, path.(string))
	}})
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "embeddings.db")
	openSQLite(t, path)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Fatalf("embeddings.db has mode %o, want 600", mode)
	}
}
