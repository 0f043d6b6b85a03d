package eventstore

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestExpectedVersionCheck(t *testing.T) {
	t.Parallel()
	stream := MustStreamName("bot", "org1", "b1")
	tests := []struct {
		name     string
		expected ExpectedVersion
		current  uint64
		exists   bool
		ok       bool
	}{
		{"any on empty", Any(), 0, false, true},
		{"any on existing", Any(), 7, true, true},
		{"no stream on empty", NoStream(), 0, false, true},
		{"no stream on version 0", NoStream(), 0, true, false},
		{"no stream on existing", NoStream(), 3, true, false},
		{"exact 0 on empty", Exact(0), 0, false, false},
		{"exact 0 on version 0", Exact(0), 0, true, true},
		{"exact matches", Exact(5), 5, true, true},
		{"exact behind", Exact(4), 5, true, false},
		{"exact ahead", Exact(6), 5, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.expected.Check(stream, tt.current, tt.exists)
			if tt.ok && err != nil {
				t.Fatalf("Check(%d, %v) = %v, want nil", tt.current, tt.exists, err)
			}
			if !tt.ok && !errors.Is(err, ErrConflict) {
				t.Fatalf("Check(%d, %v) = %v, want ErrConflict", tt.current, tt.exists, err)
			}
		})
	}
}

func TestExpectedVersionDescribes(t *testing.T) {
	t.Parallel()
	if !Any().IsAny() || Any().IsNoStream() {
		t.Error("Any() misdescribed")
	}
	if !NoStream().IsNoStream() || NoStream().IsAny() {
		t.Error("NoStream() misdescribed")
	}
	if v, ok := Exact(9).Version(); !ok || v != 9 {
		t.Errorf("Exact(9).Version() = %d, %v", v, ok)
	}
	if _, ok := Any().Version(); ok {
		t.Error("Any().Version() reported an exact version")
	}
	for e, want := range map[ExpectedVersion]string{Any(): "any", NoStream(): "no stream", Exact(2): "version 2"} {
		if e.String() != want {
			t.Errorf("String() = %q, want %q", e.String(), want)
		}
	}
}

func TestValidateAppend(t *testing.T) {
	t.Parallel()
	stream := MustStreamName("bot", "org1", "b1")
	good := NewEvent{Type: "BotCreated", Metadata: Metadata{OrgID: "org1"}, Data: json.RawMessage(`{}`)}
	with := func(change func(*NewEvent)) NewEvent {
		e := good
		change(&e)
		return e
	}
	tests := []struct {
		name   string
		stream StreamName
		events []NewEvent
		want   error
	}{
		{"ok", stream, []NewEvent{good, good}, nil},
		{"no events", stream, nil, ErrInvalidEvent},
		{"bad stream", StreamName{Category: "bot"}, []NewEvent{good}, ErrInvalidStream},
		{"no type", stream, []NewEvent{with(func(e *NewEvent) { e.Type = "" })}, ErrInvalidEvent},
		{"bad json", stream, []NewEvent{with(func(e *NewEvent) { e.Data = json.RawMessage(`{"a":`) })}, ErrInvalidEvent},
		{"nil data", stream, []NewEvent{with(func(e *NewEvent) { e.Data = nil })}, ErrInvalidEvent},
		{"other org", stream, []NewEvent{good, with(func(e *NewEvent) { e.OrgID = "org2" })}, ErrOrgMismatch},
		{"no org", stream, []NewEvent{with(func(e *NewEvent) { e.OrgID = "" })}, ErrOrgMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateAppend(tt.stream, tt.events)
			if tt.want == nil && err != nil {
				t.Fatalf("ValidateAppend = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("ValidateAppend = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	env := Envelope{Type: "BotCreated", Stream: MustStreamName("bot", "org1", "b1"), Metadata: Metadata{OrgID: "org1"}}
	tests := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"empty", Filter{}, true},
		{"org", Filter{OrgID: "org1"}, true},
		{"other org", Filter{OrgID: "org2"}, false},
		{"category", Filter{Categories: []string{"kb", "bot"}}, true},
		{"other category", Filter{Categories: []string{"kb"}}, false},
		{"type", Filter{Types: []string{"BotCreated"}}, true},
		{"other type", Filter{Types: []string{"BotDeleted"}}, false},
		{"all", Filter{OrgID: "org1", Categories: []string{"bot"}, Types: []string{"BotCreated"}}, true},
		{"all but type", Filter{OrgID: "org1", Categories: []string{"bot"}, Types: []string{"X"}}, false},
	}
	for _, tt := range tests {
		if got := tt.filter.Match(env); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEnvelopeJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := Envelope{
		ID: NewEventID(), Type: "BotCreated", Stream: MustStreamName("bot", "org1", "b1"),
		StreamVersion: 3, Position: 42, Data: json.RawMessage(`{"name":"x"}`),
		Metadata: Metadata{OrgID: "org1", Actor: Actor{Subject: "u1", Kind: "user"}, SchemaVersion: 1, OccurredAt: Now()},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Envelope
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Stream != in.Stream || out.ID != in.ID || out.Position != in.Position || string(out.Data) != string(in.Data) || !out.OccurredAt.Equal(in.OccurredAt) {
		t.Fatalf("round trip changed the envelope:\n in %+v\nout %+v", in, out)
	}
}
