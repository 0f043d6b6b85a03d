package ocsf_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/palisadehq/palisade/audit/ocsf"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// required lists, per class, the attributes OCSF 1.1.0 requires of an
// event of that class (the base event's and the class's own).
var required = map[int][]string{
	ocsf.ClassAPIActivity:    {"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id", "metadata", "actor", "api", "src_endpoint"},
	ocsf.ClassAuthentication: {"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id", "metadata", "user"},
	ocsf.ClassAccountChange:  {"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id", "metadata", "user"},
}

var categoryOf = map[int]int{ocsf.ClassAPIActivity: ocsf.CategoryApplication, ocsf.ClassAuthentication: ocsf.CategoryIAM, ocsf.ClassAccountChange: ocsf.CategoryIAM}

func TestMappedEventsCarryTheirClassesRequiredAttributes(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	m := ocsf.NewMapper(projections.NewNarrator(reg))
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		typ, data  string
		class      int
		status     int
		operation  string
		userUID    string
		activityID int
	}{
		{"AuthenticationDenied", `{"reason":"token expired","remote_addr":"192.0.2.7:5555","subject":"eve"}`, ocsf.ClassAuthentication, ocsf.StatusFailure, "", "eve", ocsf.ActivityLogon},
		{"MemberAdded", `{"sub":"bob","roles":["viewer"]}`, ocsf.ClassAccountChange, ocsf.StatusSuccess, "", "bob", ocsf.ActivityCreate},
		{"MemberRemoved", `{"sub":"bob"}`, ocsf.ClassAccountChange, ocsf.StatusSuccess, "", "bob", ocsf.AccountDelete},
		{"MemberRolesChanged", `{"sub":"bob","roles":["admin"]}`, ocsf.ClassAccountChange, ocsf.StatusSuccess, "", "bob", ocsf.ActivityOther},
		{"ServiceAccountCreated", `{"id":"sa-1","name":"ci","permissions":["bots:read"]}`, ocsf.ClassAccountChange, ocsf.StatusSuccess, "", "sa-1", ocsf.ActivityCreate},
		{"ServiceAccountRevoked", `{"id":"sa-1"}`, ocsf.ClassAccountChange, ocsf.StatusSuccess, "", "sa-1", ocsf.AccountDisable},
		{"AccessDenied", `{"action":"read","permission":"kb:read","reason":"no role grants kb:read","resource":"kb/1"}`, ocsf.ClassAPIActivity, ocsf.StatusFailure, "read", "", ocsf.ActivityOther},
		{"DocumentAdded", `{"id":"d1","knowledge_base_id":"kb1","content":"secret"}`, ocsf.ClassAPIActivity, ocsf.StatusSuccess, "DocumentAdded", "", ocsf.ActivityCreate},
		{"KnowledgeSearched", `{"query":"q","knowledge_base_ids":["kb1"],"hits":[]}`, ocsf.ClassAPIActivity, ocsf.StatusSuccess, "KnowledgeSearched", "", ocsf.ActivityRead},
		{"BotArchived", `{}`, ocsf.ClassAPIActivity, ocsf.StatusSuccess, "BotArchived", "", ocsf.ActivityDelete},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			env := eventstore.Envelope{
				ID: eventstore.NewEventID(), Type: tt.typ, Stream: eventstore.MustStreamName("org", "org-a", "org-a"),
				Data: json.RawMessage(tt.data),
				Metadata: eventstore.Metadata{OrgID: "org-a", CorrelationID: "corr-1", OccurredAt: at,
					Actor: eventstore.Actor{Subject: "alice", Kind: "user", Roles: []string{"owner"}}},
			}
			b, err := json.Marshal(m.Map(projections.AuditEvent{Sequence: 7, Event: env}))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for _, attr := range required[tt.class] {
				if _, ok := got[attr]; !ok {
					t.Errorf("class %d lacks required %s: %s", tt.class, attr, b)
				}
			}
			num := func(k string) int { f, _ := got[k].(float64); return int(f) }
			if num("class_uid") != tt.class || num("category_uid") != categoryOf[tt.class] ||
				num("activity_id") != tt.activityID || num("type_uid") != tt.class*100+tt.activityID {
				t.Errorf("class/category/activity/type: %s", b)
			}
			if num("status_id") != tt.status || int64(num("time")) != at.UnixMilli() || num("severity_id") == 0 {
				t.Errorf("status/time/severity: %s", b)
			}
			md, _ := got["metadata"].(map[string]any)
			product, _ := md["product"].(map[string]any)
			if md["version"] != ocsf.SchemaVersion || product["name"] != "Palisade" || md["correlation_uid"] != "corr-1" || md["tenant_uid"] != "org-a" {
				t.Errorf("metadata: %v", md)
			}
			if tt.operation != "" {
				if api, _ := got["api"].(map[string]any); api["operation"] != tt.operation {
					t.Errorf("api.operation %v, want %s", got["api"], tt.operation)
				}
				if actor, _ := got["actor"].(map[string]any); actor["user"].(map[string]any)["uid"] != "alice" {
					t.Errorf("actor %v", got["actor"])
				}
			}
			if tt.userUID != "" {
				if user, _ := got["user"].(map[string]any); user["uid"] != tt.userUID {
					t.Errorf("user %v, want %s", got["user"], tt.userUID)
				}
			}
			if _, ok := got["unmapped"].(map[string]any)["data"]; !ok {
				t.Errorf("unmapped lacks the payload: %s", b)
			}
		})
	}
}
