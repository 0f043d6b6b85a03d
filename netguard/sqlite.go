package netguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrPathRefused is wrapped by every error of [SQLitePath] that refuses a
// path given by a user.
var ErrPathRefused = errors.New("netguard: sqlite path refused")

// SQLitePath resolves userPath, a path relative to root
// (PALISADE_SQLITE_ROOT), to the absolute path of a regular file under
// root, for opening read-only. It refuses absolute paths, any ".."
// element, a final element that is a symbolic link, a symbolic link
// anywhere that leads outside root, and anything that is not a regular
// file. The result has every link resolved.
//
// The check and the open are separate steps, so whoever can change the
// tree under root between them can still win a race; root must be writable
// only by the operator. Hard links cannot be told apart from files and are
// the operator's to avoid.
func SQLitePath(root, userPath string) (string, error) {
	if root == "" {
		return "", errors.New("netguard: sqlite root is not configured")
	}
	if userPath == "" {
		return "", fmt.Errorf("%w: empty path", ErrPathRefused)
	}
	if strings.ContainsRune(userPath, 0) {
		return "", fmt.Errorf("%w: path contains a NUL byte", ErrPathRefused)
	}
	if filepath.IsAbs(userPath) || filepath.VolumeName(userPath) != "" || strings.HasPrefix(userPath, "/") || strings.HasPrefix(userPath, `\`) {
		return "", fmt.Errorf("%w: %q is absolute; give a path relative to the sqlite root", ErrPathRefused, userPath)
	}
	for _, elem := range strings.FieldsFunc(userPath, func(r rune) bool { return r == '/' || r == filepath.Separator }) {
		if elem == ".." {
			return "", fmt.Errorf("%w: %q has a \"..\" element", ErrPathRefused, userPath)
		}
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("netguard: sqlite root: %w", err)
	}
	// The root itself may be reached through links (/var on some systems);
	// containment is checked against where it really is.
	realRoot, err := filepath.EvalSymlinks(absRoot)
	if err != nil {
		return "", fmt.Errorf("netguard: sqlite root: %w", err)
	}
	joined := filepath.Join(realRoot, filepath.Clean(userPath))
	if !within(realRoot, joined) || joined == realRoot {
		return "", fmt.Errorf("%w: %q is not a file under the sqlite root", ErrPathRefused, userPath)
	}
	info, err := os.Lstat(joined)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrPathRefused, userPath, errors.Unwrap(err))
	}
	if info.Mode()&os.ModeSymlink != 0 {
		return "", fmt.Errorf("%w: %q is a symbolic link", ErrPathRefused, userPath)
	}
	real, err := filepath.EvalSymlinks(joined)
	if err != nil {
		// Name the cause only: the error of EvalSymlinks holds server paths.
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return "", fmt.Errorf("%w: %q: %v", ErrPathRefused, userPath, err)
	}
	if !within(realRoot, real) {
		return "", fmt.Errorf("%w: %q leads outside the sqlite root through a symbolic link", ErrPathRefused, userPath)
	}
	info, err = os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrPathRefused, userPath, errors.Unwrap(err))
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %q is not a regular file", ErrPathRefused, userPath)
	}
	return real, nil
}

// within reports whether path is root or below it; both are clean and
// absolute.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}
