//go:build !unix

package identity

import "io/fs"

// ownedByRoot: no Unix ownership to read here.
func ownedByRoot(fs.FileInfo) bool { return false }
