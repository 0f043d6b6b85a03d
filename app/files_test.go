//go:build unix

package app_test

import (
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestDataDirectoryIsPrivate starts the embedded default on a directory it
// creates, under a umask that lets group and others read (0022) and one
// that masks nothing (0000), writes a little, and holds every file in the
// data directory (the log and its -wal and -shm, the lock, the issuer key)
// to 0600 and every directory to 0700, while running and after Close.
//
// It is not parallel: the umask belongs to the whole process.
func TestDataDirectoryIsPrivate(t *testing.T) {
	for _, umask := range []int{0o022, 0o000} {
		old := syscall.Umask(umask)
		dir := filepath.Join(t.TempDir(), "palisade", "data")
		h := openHarness(t, dir)
		syscall.Umask(old)

		org, owner := h.createOrg("Acme", "alice")
		h.addMember(org, owner, "bob", "builder")
		h.createBot(owner, "Helpdesk")
		var kb struct {
			ID string `json:"id"`
		}
		h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)
		h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb.ID+"/documents", owner,
			map[string]any{"title": "Leave", "content": "Ask your manager."})

		checkPrivate(t, umask, filepath.Dir(dir), "running", map[string]bool{"events.db-wal": true, "events.db-shm": true})
		h.close()
		checkPrivate(t, umask, filepath.Dir(dir), "closed", nil)
	}
}

// checkPrivate walks root (the parent Open created along with the data
// directory) and fails for any file not 0600 or directory not 0700; want
// names files that must be there.
func checkPrivate(t *testing.T, umask int, root, when string, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		seen[d.Name()] = true
		perm := info.Mode().Perm()
		switch {
		case d.IsDir() && perm != 0o700:
			t.Errorf("umask %04o, %s: directory %s has mode %04o, want 0700", umask, when, p, perm)
		case !d.IsDir() && perm != 0o600:
			t.Errorf("umask %04o, %s: file %s has mode %04o, want 0600", umask, when, p, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	for _, name := range append([]string{"events.db", "issuer-ed25519.pem"}, slices.Collect(maps.Keys(want))...) {
		if !seen[name] {
			t.Errorf("umask %04o, %s: no %s in the data directory (seen %v)", umask, when, name, seen)
		}
	}
}

// eachFile calls fn with the path and bytes of every file under dir (a
// data directory, after the server closed), failing the test if the walk
// does.
func eachFile(t *testing.T, dir string, fn func(path string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(path, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
