package extract

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Why PDFs are read in a child process: the PDF library, like most parsers
// of a format this intricate, has inputs that make it recurse without end
// or allocate without bound, and in Go those end in a fatal runtime error
// (stack overflow, out of memory) that no recover catches and that takes
// the whole process down, every other request with it. Pre-checks narrow
// the field but cannot close it; a process boundary does. The child gets
// the document on standard input (never in its arguments, which other
// users of the machine can read, nor in a file), an empty environment (it
// needs no secrets) and tight runtime limits, and writes the text to
// standard output. If it crashes, the upload fails as malformed.

// Exit codes of the child that name the package's errors. Anything else
// (Go's 2 for a panic or fatal error, a signal) is a crash.
const (
	childMalformed = 10
	childEncrypted = 11
	childTooLarge  = 12
	childTimeout   = 13
)

// Defaults of SubprocessPDF.
const (
	defaultChildTimeout = 30 * time.Second
	defaultChildOutput  = 8 << 20
	childStderrBytes    = 16 << 10
	childInputBytes     = 32 << 20
	childPDFTimeout     = 20 * time.Second
)

// SubprocessPDF returns a PDFExtractor that runs command (the program and
// its arguments) once per document, writes the PDF to its standard input
// and reads the text from its standard output. The command is meant to be
// a process running [RunPDFChild], such as "palisade extract-pdf".
//
// The child is killed when ctx is done, when timeout has passed (default
// 30s; the error is the in-process engine's for its time limit), or
// as soon as it writes more than maxOutput bytes (default 8 MiB;
// ErrTooLarge). The child's exit code names its error (see RunPDFChild);
// a child that exits otherwise, crashes or is killed by a signal yields
// ErrMalformed, with a short reason taken from its standard error. Failing to start the command is an error of its own, wrapping
// none of the package's.
func SubprocessPDF(command []string, timeout time.Duration, maxOutput int) PDFExtractor {
	command = append([]string(nil), command...)
	if timeout <= 0 {
		timeout = defaultChildTimeout
	}
	if maxOutput <= 0 {
		maxOutput = defaultChildOutput
	}
	return func(ctx context.Context, data []byte) (string, error) {
		if len(command) == 0 {
			return "", errors.New("extract: no PDF extraction command configured")
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		run, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(run, command[0], command[1:]...)
		cmd.Env = []string{}
		cmd.Stdin = bytes.NewReader(data)
		stdout := &cappedBuffer{max: maxOutput, full: cancel}
		stderr := &cappedBuffer{max: childStderrBytes}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		// A grandchild holding the pipes open must not hold us too.
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case stdout.overflow:
			return "", fmt.Errorf("%w: text exceeds %d bytes", ErrTooLarge, maxOutput)
		case err == nil:
			return stdout.b.String(), nil
		case run.Err() != nil:
			return "", timeoutError{timeout}
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return "", fmt.Errorf("extract: running the PDF extractor: %w", err)
		}
		msg := lastLine(stderr.b.String())
		switch exit.ExitCode() {
		case childMalformed:
			return "", childError(ErrMalformed, msg)
		case childEncrypted:
			return "", childError(ErrEncrypted, msg)
		case childTooLarge:
			return "", childError(ErrTooLarge, msg)
		case childTimeout:
			return "", timeoutError{childPDFTimeout}
		}
		return "", fmt.Errorf("%w: the PDF reader crashed (%s)", ErrMalformed, crashReason(stderr.b.String(), exit))
	}
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest, so that the child never blocks on a full pipe; full, when set, is
// called once the limit is passed.
type cappedBuffer struct {
	b        bytes.Buffer
	max      int
	overflow bool
	full     func()
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room >= len(p) {
		c.b.Write(p)
	} else {
		c.b.Write(p[:max(room, 0)])
		if !c.overflow && c.full != nil {
			c.full()
		}
		c.overflow = true
	}
	return len(p), nil
}

// childError rebuilds the child's error around the sentinel it named,
// keeping the child's detail without repeating the sentinel's text.
func childError(sentinel error, msg string) error {
	msg = strings.Replace(msg, sentinel.Error()+": ", "", 1)
	if msg == "" || msg == sentinel.Error() {
		return sentinel
	}
	return fmt.Errorf("%w: %s", sentinel, excerpt(msg))
}

// crashReason names why a child died: the Go runtime's "fatal error" or
// "panic" line when there is one, the exit status or signal otherwise.
func crashReason(stderr string, exit *exec.ExitError) string {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "panic: ") {
			return excerpt(line)
		}
	}
	if line := lastLine(stderr); line != "" {
		return exit.String() + ": " + excerpt(line)
	}
	return exit.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// RunPDFChild is the child side of SubprocessPDF: it reads a PDF from
// stdin, writes its text to stdout and returns the process's exit code,
// with a one-line reason on stderr when that is not 0: 10 for a malformed
// PDF, 11 for an encrypted one, 12 for one over a limit, 13 for one over
// the time limit, 1 when stdin or stdout fail. The default [Limits] apply,
// with a 20s time limit. It limits the
// process it runs in — a 64 MiB goroutine stack, so that runaway recursion
// dies in milliseconds rather than after a gigabyte; a 1 GiB soft memory
// limit; on Linux a cap on the address space, so that a huge allocation
// fails at once instead of swapping the machine; two threads of Go code —
// so call it only from a process of its own, then exit with its result.
func RunPDFChild(stdin io.Reader, stdout, stderr io.Writer) int {
	debug.SetMaxStack(64 << 20)
	debug.SetMemoryLimit(1 << 30)
	runtime.GOMAXPROCS(min(runtime.GOMAXPROCS(0), 2))
	if err := limitAddressSpace(2 << 30); err != nil {
		fmt.Fprintln(stderr, "extract-pdf: limiting memory:", err)
	}
	data, err := io.ReadAll(io.LimitReader(stdin, childInputBytes+1))
	if err != nil {
		fmt.Fprintln(stderr, "extract-pdf: reading the PDF:", err)
		return 1
	}
	text, err := Limits{MaxInputBytes: childInputBytes, PDFTimeout: childPDFTimeout}.Text(context.Background(), PDF, data)
	if err != nil {
		fmt.Fprintln(stderr, firstLine(err.Error()))
		switch {
		case errors.Is(err, ErrTooLarge) && errors.Is(err, context.DeadlineExceeded):
			return childTimeout
		case errors.Is(err, ErrEncrypted):
			return childEncrypted
		case errors.Is(err, ErrTooLarge):
			return childTooLarge
		}
		return childMalformed
	}
	if _, err := io.WriteString(stdout, text); err != nil {
		fmt.Fprintln(stderr, "extract-pdf: writing the text:", err)
		return 1
	}
	return 0
}
