package app

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// busLogger passes Watermill's logs to slog, dropping its per-message trace
// and debug lines unless debug logging is on: they cost more than the
// message handling itself on the hot path.
type busLogger struct {
	watermill.LoggerAdapter
	debug bool
}

func newBusLogger(l *slog.Logger) watermill.LoggerAdapter {
	return busLogger{LoggerAdapter: watermill.NewSlogLogger(l), debug: l.Enabled(context.Background(), slog.LevelDebug)}
}

func (l busLogger) Debug(msg string, fields watermill.LogFields) {
	if l.debug {
		l.LoggerAdapter.Debug(msg, fields)
	}
}

func (l busLogger) Trace(string, watermill.LogFields) {}

func (l busLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return busLogger{LoggerAdapter: l.LoggerAdapter.With(fields), debug: l.debug}
}
