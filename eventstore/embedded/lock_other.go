//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package embedded

import (
	"fmt"
	"os"
)

// lockFile on platforms without flock only creates the lock file: a second
// Open of the same file is not detected there, and must not be made.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return f, nil
}

func unlockFile(f *os.File) error { return f.Close() }
