package consumer

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// watermillLogger passes Watermill's logs to slog, dropping its
// per-message trace lines, and its debug lines unless debug logging is
// on, before their fields are turned into slog's: Watermill's own adapter
// builds them first, and on the hot path (a router delivering every event
// to every group, a cqrs group looking at each of its handlers) that cost
// more than handling the message.
type watermillLogger struct {
	watermill.LoggerAdapter
	debug bool
}

// NewWatermillLogger returns the adapter through which Watermill's
// routers, pub/subs and processors log to l.
func NewWatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return watermillLogger{LoggerAdapter: watermill.NewSlogLogger(l), debug: l.Enabled(context.Background(), slog.LevelDebug)}
}

func (l watermillLogger) Debug(msg string, fields watermill.LogFields) {
	if l.debug {
		l.LoggerAdapter.Debug(msg, fields)
	}
}

func (l watermillLogger) Trace(string, watermill.LogFields) {}

func (l watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return watermillLogger{LoggerAdapter: l.LoggerAdapter.With(fields), debug: l.debug}
}
