// Command palisade is the one Palisade binary: serve runs the server,
// token mints tokens from the built-in issuer, audit replay prints an
// organization's events from the log, and bench measures the command path.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "palisade:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: palisade <command> [flags]

commands:
  serve         run Palisade (embedded event log; read models in memory, or PostgreSQL)
  migrate       bring the PostgreSQL read-model schema up to date (--rebuild: empty the read models)
  token         mint a token from the built-in issuer
  audit replay  print an organization's events from the log as JSON lines
  audit verify  check the log against the audit chain and its signed checkpoints
  audit narrative  print the story of one request (--correlation ID) from the log
  audit export  print an organization's record as JSON lines or OCSF events, for a SIEM
  audit access  what a subject could do, or who could read a resource, at a moment
  keys rotate   add a new version of an organization's data key (the log is not rewritten)
  tail          print events from Kafka topics as JSON lines (reference consumer)
  bench         measure the HTTP command path against a fresh server

Run "palisade <command> -h" for a command's flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "audit":
		if len(args) >= 2 && args[1] == "verify" {
			return auditVerify(ctx, args[2:], stdout, stderr)
		}
		if len(args) >= 2 && (args[1] == "narrative" || args[1] == "export") {
			return auditStory(ctx, args[1], args[2:], stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "access" {
			return auditAccess(ctx, args[2:], stdout, stderr)
		}
		if len(args) < 2 || args[1] != "replay" {
			return fmt.Errorf("usage: palisade audit replay|verify [--data-dir DIR | --eventstore-url esdb://…] [--org ID] [--content]")
		}
		return auditReplay(ctx, args[2:], stdout, stderr)
	case "keys":
		if len(args) < 2 || args[1] != "rotate" {
			return fmt.Errorf("usage: palisade keys rotate --data-dir DIR --org ID")
		}
		return keysRotate(ctx, args[2:], stdout, stderr)
	case "tail":
		return tail(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "extract-pdf":
		return extractPDF(args[1:], os.Stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// env returns the PALISADE_* variable name, or def when it is unset.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
