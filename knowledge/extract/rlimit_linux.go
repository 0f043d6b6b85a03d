package extract

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// limitAddressSpace caps the process's virtual memory at what it has
// mapped now plus extra, so that an allocation past that fails at once
// (the Go runtime then aborts, which is what the parent expects of a PDF
// that asks for that much). The cap is relative because what a Go process
// maps at start varies a lot, by far the most under the race detector.
func limitAddressSpace(extra uint64) error {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return err
	}
	fields := bytes.Fields(statm)
	if len(fields) == 0 {
		return fmt.Errorf("unexpected /proc/self/statm %q", statm)
	}
	pages, err := strconv.ParseUint(string(fields[0]), 10, 64)
	if err != nil {
		return err
	}
	limit := pages*uint64(os.Getpagesize()) + extra
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
}
