// Package ocsf maps Palisade's audit events to the Open Cybersecurity
// Schema Framework (OCSF, schema 1.1.0), so that a SIEM takes the trail
// without custom parsing: authentication denials are Authentication (3002),
// changes to members and service accounts Account Change (3001), and every
// other event, denials included (status Failure), API Activity (6003).
//
// It only translates: it reads the event as the caller may see it (content
// already redacted or not) and never decides what a reader may see.
package ocsf

import (
	"encoding/json"
	"net"
	"strings"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// SchemaVersion is the OCSF version the mapping targets.
const SchemaVersion = "1.1.0"

// Classes and categories used.
const (
	CategoryIAM         = 3 // Identity & Access Management
	CategoryApplication = 6 // Application Activity

	ClassAccountChange  = 3001
	ClassAuthentication = 3002
	ClassAPIActivity    = 6003
)

// Activities, statuses and severities used.
const (
	ActivityOther  = 99
	ActivityCreate = 1 // API Activity and Account Change: Create
	ActivityRead   = 2 // API Activity: Read
	ActivityUpdate = 3 // API Activity: Update
	ActivityDelete = 4 // API Activity: Delete

	ActivityLogon = 1 // Authentication: Logon

	AccountDisable = 5 // Account Change: Disable
	AccountDelete  = 6 // Account Change: Delete

	StatusSuccess = 1
	StatusFailure = 2

	SeverityInformational = 1
	SeverityMedium        = 3
)

// Event is one OCSF event. Fields a class does not use stay empty and are
// left out of the JSON.
type Event struct {
	CategoryUID  int            `json:"category_uid"`
	ClassUID     int            `json:"class_uid"`
	ActivityID   int            `json:"activity_id"`
	TypeUID      int            `json:"type_uid"`
	Time         int64          `json:"time"`
	SeverityID   int            `json:"severity_id"`
	StatusID     int            `json:"status_id"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message,omitempty"`
	Metadata     Metadata       `json:"metadata"`
	Actor        *Actor         `json:"actor,omitempty"`
	User         *User          `json:"user,omitempty"`
	API          *API           `json:"api,omitempty"`
	SrcEndpoint  *Endpoint      `json:"src_endpoint,omitempty"`
	Resources    []Resource     `json:"resources,omitempty"`
	Unmapped     map[string]any `json:"unmapped,omitempty"`
}

// Metadata names the product and the schema version, and identifies the
// event in Palisade's record.
type Metadata struct {
	Version        string  `json:"version"`
	Product        Product `json:"product"`
	UID            string  `json:"uid"`
	CorrelationUID string  `json:"correlation_uid,omitempty"`
	TenantUID      string  `json:"tenant_uid"`
	EventCode      string  `json:"event_code"`
	Sequence       uint64  `json:"sequence"`
}

// Product is Palisade.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// Actor is who acted, with the chain it acted for.
type Actor struct {
	User User `json:"user"`
	// InvokedBy is the on-behalf-of chain, the invoker first.
	InvokedBy string `json:"invoked_by,omitempty"`
}

// User is an OCSF user: uid is Palisade's subject, type its kind.
type User struct {
	UID    string  `json:"uid"`
	Name   string  `json:"name"`
	Type   string  `json:"type,omitempty"`
	Groups []Group `json:"groups,omitempty"`
}

// Group is a role.
type Group struct {
	Name string `json:"name"`
}

// API is the operation: the event type, or the refused action.
type API struct {
	Operation string `json:"operation"`
}

// Endpoint is where a request came from, as far as the record knows.
type Endpoint struct {
	IP      string `json:"ip,omitempty"`
	SvcName string `json:"svc_name,omitempty"`
}

// Resource is a resource the event touched.
type Resource struct {
	UID  string `json:"uid"`
	Type string `json:"type"`
}

// Mapper maps audit events; the narrator gives each its message and its
// resources.
type Mapper struct {
	narrator *projections.Narrator
}

// NewMapper returns a mapper telling events with narrator.
func NewMapper(narrator *projections.Narrator) *Mapper { return &Mapper{narrator: narrator} }

// Map maps one audit event, as the reader may see it.
func (m *Mapper) Map(e projections.AuditEvent) Event {
	env := e.Event
	step := m.narrator.Step(e)
	out := Event{
		Time:       env.OccurredAt.UnixMilli(),
		SeverityID: SeverityInformational,
		StatusID:   StatusSuccess,
		Message:    step.Summary,
		Metadata: Metadata{
			Version: SchemaVersion, Product: Product{Name: "Palisade", VendorName: "Palisade"},
			UID: env.ID.String(), CorrelationUID: env.CorrelationID, TenantUID: env.OrgID,
			EventCode: env.Type, Sequence: e.Sequence,
		},
		Unmapped: map[string]any{
			"stream": env.Stream.String(), "stream_version": env.StreamVersion,
			"causation_id": env.CausationID, "trace_id": env.TraceID,
			"authorization": env.Authorization, "data": json.RawMessage(env.Data),
		},
	}
	if env.IdempotencyKey != "" {
		out.Unmapped["idempotency_key"] = env.IdempotencyKey
	}
	if env.Actor.Scope != nil {
		out.Unmapped["actor_scope"] = env.Actor.Scope
	}
	if env.Actor.CreatedBy != "" {
		out.Unmapped["actor_created_by"] = env.Actor.CreatedBy
	}
	for _, r := range step.Resources {
		out.Resources = append(out.Resources, Resource{UID: r.ID, Type: r.Kind})
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(env.Data, &fields) // a payload that is no object maps with no fields
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(fields[key], &s) // a redacted or absent value reads as ""
		return s
	}
	actor := actorOf(env.Actor)

	switch env.Type {
	case "AuthenticationDenied":
		out.CategoryUID, out.ClassUID, out.ActivityID = CategoryIAM, ClassAuthentication, ActivityLogon
		out.StatusID, out.SeverityID, out.StatusDetail = StatusFailure, SeverityMedium, str("reason")
		name := str("subject")
		if name == "" {
			name = "unknown"
		}
		out.User = &User{UID: name, Name: name}
		out.SrcEndpoint = &Endpoint{IP: hostOf(str("remote_addr")), SvcName: "palisade"}
		out.Unmapped["method"], out.Unmapped["path"] = str("method"), str("path")
	case "MemberAdded", "MemberRolesChanged", "MemberRemoved":
		out.CategoryUID, out.ClassUID = CategoryIAM, ClassAccountChange
		out.ActivityID = map[string]int{"MemberAdded": ActivityCreate, "MemberRemoved": AccountDelete}[env.Type]
		sub := str("sub")
		if iss := str("issuer"); iss != "" {
			sub = iss + "|" + sub
		}
		out.User = &User{UID: sub, Name: sub, Type: "User"}
		var roles []string
		_ = json.Unmarshal(fields["roles"], &roles)
		for _, r := range roles {
			out.User.Groups = append(out.User.Groups, Group{Name: r})
		}
		out.Actor = actor
	case "ServiceAccountCreated", "ServiceAccountRevoked", "ServiceAccountReassigned":
		out.CategoryUID, out.ClassUID = CategoryIAM, ClassAccountChange
		out.ActivityID = map[string]int{"ServiceAccountCreated": ActivityCreate, "ServiceAccountRevoked": AccountDisable}[env.Type]
		id := str("id")
		out.User = &User{UID: id, Name: id, Type: "service"}
		if n := str("name"); n != "" {
			out.User.Name = n
		}
		out.Actor = actor
	default:
		out.CategoryUID, out.ClassUID = CategoryApplication, ClassAPIActivity
		out.ActivityID = apiActivity(env.Type)
		out.Actor = actor
		out.API = &API{Operation: env.Type}
		out.SrcEndpoint = &Endpoint{SvcName: "palisade"}
		if env.Type == "AccessDenied" || env.Type == "AccessDenialsCoalesced" {
			out.StatusID, out.SeverityID, out.StatusDetail = StatusFailure, SeverityMedium, str("reason")
			out.API.Operation = str("action")
			if out.API.Operation == "" {
				out.API.Operation = env.Type
			}
		}
	}
	if out.ActivityID == 0 {
		out.ActivityID = ActivityOther
	}
	out.TypeUID = out.ClassUID*100 + out.ActivityID
	return out
}

// apiActivity reads the API Activity's activity from the event type's verb.
func apiActivity(eventType string) int {
	switch {
	case strings.HasSuffix(eventType, "Created"), strings.HasSuffix(eventType, "Added"),
		strings.HasSuffix(eventType, "Submitted"), strings.HasSuffix(eventType, "Started"),
		strings.HasSuffix(eventType, "Bound"):
		return ActivityCreate
	case eventType == "KnowledgeSearched", eventType == "AuditContentRead":
		return ActivityRead
	case strings.HasSuffix(eventType, "Deleted"), strings.HasSuffix(eventType, "Archived"),
		strings.HasSuffix(eventType, "Closed"), strings.HasSuffix(eventType, "Unbound"):
		return ActivityDelete
	case strings.HasSuffix(eventType, "Updated"), strings.HasSuffix(eventType, "Renamed"),
		strings.HasSuffix(eventType, "Set"), strings.HasSuffix(eventType, "Replaced"),
		strings.HasSuffix(eventType, "Chunked"), strings.HasSuffix(eventType, "Planned"):
		return ActivityUpdate
	}
	return ActivityOther
}

func actorOf(a eventstore.Actor) *Actor {
	u := User{UID: a.Subject, Name: a.Subject, Type: a.Kind}
	for _, r := range a.Roles {
		u.Groups = append(u.Groups, Group{Name: r})
	}
	out := &Actor{User: u}
	if len(a.OnBehalfOf) > 0 {
		out.InvokedBy = strings.Join(a.OnBehalfOf, " > ")
	}
	return out
}

func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
