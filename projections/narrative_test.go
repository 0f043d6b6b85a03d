package projections_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// TestEveryEventTypeHasANarrativeFormat: a new event type must say how it
// reads in a narrative, in the one table of summaries.
func TestEveryEventTypeHasANarrativeFormat(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	n := projections.NewNarrator(reg)
	for _, typ := range reg.Types() {
		if !n.Tells(typ) {
			t.Errorf("event type %s has no narrative format: add it to stepFormats (projections/narrativeformats.go)", typ)
		}
	}
}

const contentCanary = "CANARY-CONTENT"

// fill sets every string of v: content fields (audit:"content") to the
// canary, the others to "rec"; lists get one element, maps one entry.
func fill(v reflect.Value, content bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), content)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				fill(v.Field(i), f.Tag.Get(events.ContentTag) == events.DeclareContent)
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			s := `"rec"`
			if content {
				s = `[["` + contentCanary + `"]]`
			}
			v.SetBytes([]byte(s))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), content)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		val := reflect.New(v.Type().Elem()).Elem()
		fill(val, content)
		m.SetMapIndex(reflect.ValueOf("k"), val)
		v.Set(m)
	case reflect.String:
		if content {
			v.SetString(contentCanary)
		} else {
			v.SetString("rec")
		}
	}
}

// TestNarrativeStepsShowNoContent: whatever an event holds, its summary,
// details and resources are built from record fields only, so they are the
// same for an auditor without audit:read-content.
func TestNarrativeStepsShowNoContent(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	n := projections.NewNarrator(reg)
	for _, proto := range reg.Prototypes() {
		v := reflect.ValueOf(proto)
		fill(v, false)
		data, err := json.Marshal(proto)
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: proto.EventType(), Stream: eventstore.MustStreamName("doc", "org-a", "doc-1"),
			Data: data, Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "alice", Kind: "user"}},
		}
		step := n.Step(projections.AuditEvent{Sequence: 1, Event: env})
		told, err := json.Marshal(struct {
			S string
			R []projections.Resource
			D map[string]any
		}{step.Summary, step.Resources, step.Details})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(told), contentCanary) {
			t.Errorf("%s tells content: %s", env.Type, told)
		}
		if step.Summary == "" || strings.HasPrefix(step.Summary, env.Type+" on ") {
			t.Errorf("%s has only the generic summary %q", env.Type, step.Summary)
		}
	}
}

// TestNarrativeStepOfUnknownType: a type the table does not know gets the
// generic line, not an error.
func TestNarrativeStepOfUnknownType(t *testing.T) {
	t.Parallel()
	n := projections.NewNarrator(events.NewRegistry())
	env := eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: "SomethingNew", Stream: eventstore.MustStreamName("bot", "org-a", "bot-1"),
		Data:     []byte(`{"x":1}`),
		Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "alice", Kind: "user", OnBehalfOf: []string{"bob"}}},
	}
	step := n.Step(projections.AuditEvent{Sequence: 3, Event: env})
	if want := "SomethingNew on bot-org-a_bot-1 by user alice for bob"; step.Summary != want {
		t.Errorf("summary %q, want %q", step.Summary, want)
	}
	if len(step.Resources) != 1 || step.Resources[0] != (projections.Resource{Kind: projections.ResourceBot, ID: "bot-1"}) {
		t.Errorf("resources %v", step.Resources)
	}
}
