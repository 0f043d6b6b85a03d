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
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errNoCommand) {
		fmt.Fprintln(os.Stderr, "palisade:", err)
	}
	os.Exit(exitCode(err))
}

// errNoCommand: palisade was run without a command (the usage is printed).
var errNoCommand = errors.New("no command given")

// exitCode is 0 for success and for -h/--help (the flag package's
// ErrHelp), 2 for everything else.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// isHelp reports whether args ask for help.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help")
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
  issuer-keys   manage the token issuer's key set file shared by replicas: generate, add, list, remove, jwks
  tail          print events from Kafka topics as JSON lines (reference consumer)
  bench         measure the HTTP command path against a fresh server
  version       print the module version and the VCS revision it was built from

Run "palisade <command> -h" for a command's flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errNoCommand
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "version":
		return version(stdout)
	case "audit":
		if len(args) < 2 || isHelp(args[1:]) {
			fmt.Fprintln(stdout, "usage: palisade audit replay|verify|narrative|export|access [flags]; \"palisade audit <command> -h\" for a command's flags")
			if len(args) < 2 {
				return errors.New("audit: name a command")
			}
			return nil
		}
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
		if len(args) >= 2 && isHelp(args[1:]) {
			fmt.Fprintln(stdout, "usage: palisade keys rotate --data-dir DIR --org ID")
			return nil
		}
		if len(args) < 2 || args[1] != "rotate" {
			return fmt.Errorf("usage: palisade keys rotate --data-dir DIR --org ID")
		}
		return keysRotate(ctx, args[2:], stdout, stderr)
	case "issuer-keys":
		return issuerKeys(args[1:], stdout, stderr)
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

// version prints the module version and VCS information recorded in
// the binary (go version -m shows the same).
func version(stdout io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("version: this binary carries no build information")
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	fmt.Fprintf(stdout, "palisade %s\n", info.Main.Version)
	fmt.Fprintf(stdout, "module   %s\n", info.Main.Path)
	fmt.Fprintf(stdout, "go       %s\n", info.GoVersion)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(stdout, "revision %s\n", rev)
		fmt.Fprintf(stdout, "time     %s\n", settings["vcs.time"])
	}
	return nil
}

// env returns the PALISADE_* variable name, or def when it is unset.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func newLogger(w io.Writer, level *slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if level != nil {
		opts.Level = level
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// levelValue is a --log-level: debug, info, warn or error, nothing else.
type levelValue struct{ level slog.Level }

func (v *levelValue) String() string { return strings.ToLower(v.level.String()) }

func (v *levelValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return v.level.UnmarshalText([]byte(s))
	}
	return fmt.Errorf("want debug, info, warn or error, got %q", s)
}

// logLevelFlag adds --log-level to fs, its default PALISADE_LOG_LEVEL or
// info; a level that is not one of the four is an error, not info.
func logLevelFlag(fs *flag.FlagSet, usage string) (*slog.Level, error) {
	v := &levelValue{}
	if err := v.Set(env("PALISADE_LOG_LEVEL", "info")); err != nil {
		return nil, fmt.Errorf("PALISADE_LOG_LEVEL: %w", err)
	}
	fs.Var(v, "log-level", usage)
	return &v.level, nil
}
