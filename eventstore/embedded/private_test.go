//go:build unix

package embedded

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenNarrowsAnEarlierRunsFiles: a log, WAL and shared-memory file
// that an earlier version left readable by others are 0600 once the store
// has opened them.
func TestOpenNarrowsAnEarlierRunsFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s := mustOpen(t, path, defaultConfig())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustOpen(t, path, defaultConfig())
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), perm)
		}
	}
}
