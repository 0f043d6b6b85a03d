package netguard

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sqliteTree builds, under a fresh directory:
//
//	root/db.sqlite                 a file
//	root/sub/inner.sqlite          a file
//	root/dir/                      a directory
//	root/fifo                      a named pipe
//	root/link-inside -> db.sqlite  final-element link, inside
//	root/link-outside -> ../outside.sqlite
//	root/subdir-link -> sub        directory link, inside
//	root/escape -> ..              directory link, outside
//	outside.sqlite                 a file beside root
//
// and returns root.
func sqliteTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("SQLite format 3\x00"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(filepath.Join(root, "sub"))
	mkdir(filepath.Join(root, "dir"))
	write(filepath.Join(root, "db.sqlite"))
	write(filepath.Join(root, "sub", "inner.sqlite"))
	write(filepath.Join(base, "outside.sqlite"))
	link("db.sqlite", filepath.Join(root, "link-inside"))
	link("../outside.sqlite", filepath.Join(root, "link-outside"))
	link("sub", filepath.Join(root, "subdir-link"))
	link("..", filepath.Join(root, "escape"))
	link(filepath.Join(base, "outside.sqlite"), filepath.Join(root, "sub", "abs-outside"))
	if err := mkfifo(filepath.Join(root, "fifo")); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return root
}

func TestSQLitePath(t *testing.T) {
	t.Parallel()
	root := sqliteTree(t)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    string // relative to root; "" for refused
		wantErr string
	}{
		{path: "db.sqlite", want: "db.sqlite"},
		{path: "./db.sqlite", want: "db.sqlite"},
		{path: "sub/inner.sqlite", want: "sub/inner.sqlite"},
		{path: "sub//inner.sqlite", want: "sub/inner.sqlite"},
		{path: "subdir-link/inner.sqlite", want: "sub/inner.sqlite"},
		{path: "", wantErr: "empty path"},
		{path: "/etc/passwd", wantErr: "is absolute"},
		{path: root + "/db.sqlite", wantErr: "is absolute"},
		{path: "../outside.sqlite", wantErr: `".." element`},
		{path: "sub/../db.sqlite", wantErr: `".." element`},
		{path: "sub/../../outside.sqlite", wantErr: `".." element`},
		{path: "..", wantErr: `".." element`},
		{path: ".", wantErr: "not a file under the sqlite root"},
		{path: "link-inside", wantErr: "is a symbolic link"},
		{path: "link-outside", wantErr: "is a symbolic link"},
		{path: "sub/abs-outside", wantErr: "is a symbolic link"},
		{path: "escape/outside.sqlite", wantErr: "leads outside the sqlite root"},
		{path: "escape/root/db.sqlite", want: "db.sqlite"}, // out and back in: the file is under root
		{path: "dir", wantErr: "not a regular file"},
		{path: "fifo", wantErr: "not a regular file"},
		{path: "missing.sqlite", wantErr: "no such file"},
		{path: "db.sqlite\x00.txt", wantErr: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			got, err := SQLitePath(root, tt.path)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrPathRefused) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SQLitePath(%q) = %q, %v; want ErrPathRefused containing %q", tt.path, got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), realRoot) && !strings.Contains(tt.path, realRoot) {
					t.Errorf("error %q shows the server's root path", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SQLitePath(%q): %v", tt.path, err)
			}
			if want := filepath.Join(realRoot, tt.want); got != want {
				t.Errorf("SQLitePath(%q) = %q, want %q", tt.path, got, want)
			}
		})
	}
}

func TestSQLitePathRootThroughLink(t *testing.T) {
	t.Parallel()
	root := sqliteTree(t)
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(root, alias); err != nil {
		t.Fatal(err)
	}
	got, err := SQLitePath(alias, "db.sqlite")
	if err != nil {
		t.Fatalf("root given through a link: %v", err)
	}
	realRoot, _ := filepath.EvalSymlinks(root)
	if got != filepath.Join(realRoot, "db.sqlite") {
		t.Errorf("got %q", got)
	}
	if _, err := SQLitePath("", "db.sqlite"); err == nil {
		t.Error("an unconfigured root was accepted")
	}
}
