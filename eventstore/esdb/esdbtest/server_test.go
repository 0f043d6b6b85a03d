package esdbtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
)

// These tests hold the stand-in to the KurrentDB behaviour the adapter
// relies on, through the real client.

func client(t *testing.T, srv *esdbtest.Server) *esdbclient.Client {
	t.Helper()
	settings, err := esdbclient.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatalf("parse %s: %v", srv.URL(), err)
	}
	settings.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(settings)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func events(ids ...uuid.UUID) []esdbclient.EventData {
	out := make([]esdbclient.EventData, len(ids))
	for i, id := range ids {
		out[i] = esdbclient.EventData{EventID: id, EventType: "E", ContentType: esdbclient.ContentTypeJson, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

func ids(n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = uuid.New()
	}
	return out
}

func isCode(err error, code esdbclient.ErrorCode) bool {
	var e *esdbclient.Error
	return errors.As(err, &e) && e.Code() == code
}

func readAll(t *testing.T, c *esdbclient.Client, opts esdbclient.ReadAllOptions, count uint64) []*esdbclient.RecordedEvent {
	t.Helper()
	rs, err := c.ReadAll(context.Background(), opts, count)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	defer rs.Close()
	var out []*esdbclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		out = append(out, ev.OriginalEvent())
	}
}

func TestAppendRecognisesRetries(t *testing.T) {
	t.Parallel()
	srv := esdbtest.New(t)
	c := client(t, srv)
	ctx := context.Background()
	first := ids(2)
	res, err := c.AppendToStream(ctx, "s-o_1", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, events(first...)...)
	if err != nil || res.NextExpectedVersion != 1 {
		t.Fatalf("append = %+v, %v", res, err)
	}
	second := ids(1)
	if _, err := c.AppendToStream(ctx, "s-o_1", esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Revision(1)}, events(second...)...); err != nil {
		t.Fatalf("append: %v", err)
	}
	stored := srv.Events()

	tests := []struct {
		name     string
		expected esdbclient.ExpectedRevision
		ids      []uuid.UUID
		revision uint64 // answered, for a recognised retry
		want     esdbclient.ErrorCode
	}{
		{"no stream, same ids", esdbclient.NoStream{}, first, 1, -1},
		{"revision, same ids", esdbclient.Revision(1), second, 2, -1},
		{"any, same ids", esdbclient.Any{}, first, 1, -1},
		{"no stream, first id only", esdbclient.NoStream{}, first[:1], 0, -1},
		{"no stream, new ids", esdbclient.NoStream{}, ids(2), 0, esdbclient.ErrorCodeWrongExpectedVersion},
		{"revision, past the end", esdbclient.Revision(1), append(slices.Clone(second), uuid.New()), 0, esdbclient.ErrorCodeUnknown},
		{"no stream, first matches, second does not", esdbclient.NoStream{}, []uuid.UUID{first[0], uuid.New()}, 0, esdbclient.ErrorCodeUnknown},
		{"any, first matches, second does not", esdbclient.Any{}, []uuid.UUID{first[0], uuid.New()}, 0, esdbclient.ErrorCodeUnknown},
		{"revision ahead", esdbclient.Revision(5), ids(1), 0, esdbclient.ErrorCodeWrongExpectedVersion},
		{"stream exists on a new stream", esdbclient.StreamExists{}, ids(1), 0, esdbclient.ErrorCodeWrongExpectedVersion},
	}
	for _, tt := range tests {
		stream := "s-o_1"
		if _, ok := tt.expected.(esdbclient.StreamExists); ok {
			stream = "s-o_new"
		}
		res, err := c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: tt.expected}, events(tt.ids...)...)
		if tt.want >= 0 {
			if !isCode(err, tt.want) {
				t.Errorf("%s: append = %v, want error code %d", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil || res.NextExpectedVersion != tt.revision {
			t.Errorf("%s: append = %+v, %v; want success at revision %d", tt.name, res, err, tt.revision)
		}
	}
	if n := srv.Events(); n != stored {
		t.Fatalf("retries and refusals wrote %d events", n-stored)
	}
}

func TestReadPositions(t *testing.T) {
	t.Parallel()
	srv := esdbtest.New(t)
	c := client(t, srv)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.AppendToStream(ctx, fmt.Sprintf("s-o_%d", i), esdbclient.AppendToStreamOptions{}, events(ids(2)...)...); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	all := readAll(t, c, esdbclient.ReadAllOptions{}, 100)
	if len(all) != 7 || all[0].StreamID != "$settings" {
		t.Fatalf("log starts %v, want the server's $settings event then 6", all)
	}
	for _, e := range all {
		if e.Position.Commit != e.Position.Prepare {
			t.Fatalf("event at %+v: commit and prepare differ", e.Position)
		}
	}
	at := all[3].Position
	if got := readAll(t, c, esdbclient.ReadAllOptions{From: at}, 2); got[0].Position != at {
		t.Fatalf("forwards from %v starts at %v, want the event there", at, got[0].Position)
	}
	if got := readAll(t, c, esdbclient.ReadAllOptions{From: at, Direction: esdbclient.Backwards}, 1); got[0].Position != all[2].Position {
		t.Fatalf("backwards from %v starts at %v, want the event before", at, got[0].Position)
	}
	if got := readAll(t, c, esdbclient.ReadAllOptions{From: esdbclient.End{}, Direction: esdbclient.Backwards}, 1); got[0].Position != all[6].Position {
		t.Fatalf("backwards from the end starts at %v, want the last event", got[0].Position)
	}
	inside := esdbclient.Position{Commit: at.Commit + 1, Prepare: at.Commit + 1}
	rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{From: inside}, 1)
	if err == nil {
		_, err = rs.Recv()
		rs.Close()
	}
	if err == nil {
		t.Fatal("a read from inside a record succeeded")
	}
}

func TestSubscribeToAll(t *testing.T) {
	t.Parallel()
	srv := esdbtest.New(t)
	c := client(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	appendTo := func(stream, typ string) {
		t.Helper()
		e := events(uuid.New())
		e[0].EventType = typ
		if _, err := c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{}, e...); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	appendTo("bot-org1_a", "Created")
	appendTo("kb-org2_b", "Added")
	all := readAll(t, c, esdbclient.ReadAllOptions{}, 100)

	sub, err := c.SubscribeToAll(ctx, esdbclient.SubscribeToAllOptions{
		From:   all[1].Position, // after the first of ours
		Filter: &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Regex: "^[A-Za-z0-9.:]+-org2_"},
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Close()
	var got []string
	caughtUp := false
	for len(got) < 2 {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			caughtUp = true
			appendTo("bot-org1_a", "Renamed") // filtered out
			appendTo("bot-org2_c", "Created")
		case ev.EventAppeared != nil:
			got = append(got, ev.EventAppeared.OriginalEvent().StreamID)
		}
	}
	if !caughtUp || !slices.Equal(got, []string{"kb-org2_b", "bot-org2_c"}) {
		t.Fatalf("caught up %v, got %v; want kb-org2_b, then live bot-org2_c", caughtUp, got)
	}

	srv.DropSubscriptions()
	for {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			break
		}
	}
}
