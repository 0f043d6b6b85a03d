// Package events maps the stable type names of every domain event to its Go
// type, so that the log's JSON can be turned back into domain events, and
// knows which fields of each type are content (see [ContentTag]) so that
// readers of the log without audit:read-content get it redacted. It is the
// one place a new bounded context registers its events.
//
// It must never do I/O; it only encodes, decodes and redacts.
package events

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
)

// SecurityCategory is the stream category of an organization's security
// record (denied attempts), "security-{orgID}_{stream}".
const SecurityCategory = "security"

// AccessDenied records a refused attempt: who tried what, on which
// resource, and why it was refused.
type AccessDenied struct {
	Action     string `json:"action" audit:"record"`
	Permission string `json:"permission,omitempty" audit:"record"`
	Reason     string `json:"reason" audit:"record"`
	Resource   string `json:"resource,omitempty" audit:"record"`
	Method     string `json:"method,omitempty" audit:"record"`
	Path       string `json:"path,omitempty" audit:"record"`
}

// AuthenticationDenied records a request whose credentials were refused.
// The token itself is never recorded.
type AuthenticationDenied struct {
	Reason     string `json:"reason" audit:"record"`
	Method     string `json:"method,omitempty" audit:"record"`
	Path       string `json:"path,omitempty" audit:"record"`
	RemoteAddr string `json:"remote_addr,omitempty" audit:"record"`
	Subject    string `json:"subject,omitempty" audit:"record"`
	// Suppressed counts denials not recorded one by one since the last
	// recorded one (recording is rate limited).
	Suppressed uint64 `json:"suppressed,omitempty"`
}

func (AccessDenied) EventType() string         { return "AccessDenied" }
func (AuthenticationDenied) EventType() string { return "AuthenticationDenied" }

// Registry knows every event type, and what of each type's payload is
// content (see [ContentTag]).
type Registry struct {
	types map[string]reflect.Type
	plans map[string]*contentPlan
}

// NewRegistry returns the registry of every domain event.
func NewRegistry() *Registry {
	r := &Registry{types: map[string]reflect.Type{}, plans: map[string]*contentPlan{}}
	all := append(tenancy.Events(), bots.Events()...)
	all = append(all, knowledge.Events()...)
	all = append(all, jobs.Events()...)
	all = append(all, conversations.Events()...)
	all = append(all, datasources.Events()...)
	all = append(all, analytics.Events()...)
	all = append(all, &AccessDenied{}, &AccessDenialsCoalesced{}, &AuthenticationDenied{}, &AuditContentRead{}, &IdempotentResponseRecorded{})
	for _, e := range all {
		t := reflect.TypeOf(e).Elem()
		r.types[e.EventType()] = t
		r.plans[e.EventType()] = planFor(t)
	}
	return r
}

// Types lists every registered type name.
func (r *Registry) Types() []string {
	names := make([]string, 0, len(r.types))
	for n := range r.types {
		names = append(names, n)
	}
	return names
}

// Prototypes returns a zero value of every registered event type.
func (r *Registry) Prototypes() []domain.Event {
	out := make([]domain.Event, 0, len(r.types))
	for _, t := range r.types {
		out = append(out, reflect.New(t).Interface().(domain.Event))
	}
	return out
}

// New returns a pointer to a zero event of the named type.
func (r *Registry) New(eventType string) (domain.Event, error) {
	t, ok := r.types[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	return reflect.New(t).Interface().(domain.Event), nil
}

// Decode turns an event's type and JSON data into the domain event.
func (r *Registry) Decode(eventType string, data []byte) (domain.Event, error) {
	e, err := r.New(eventType)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
