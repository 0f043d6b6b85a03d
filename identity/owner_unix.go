//go:build unix

package identity

import (
	"io/fs"
	"syscall"
)

// ownedByRoot reports whether info is of a file owned by user 0.
func ownedByRoot(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
