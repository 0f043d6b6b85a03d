package accessreview_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain"
)

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                          string
		subject, issuer, resource, at string
		wantSubject, wantResource     string
		wantAt                        time.Time
		wantErr                       string
	}{
		{name: "user now", subject: "user:bob", wantSubject: "user:bob", wantAt: now},
		{name: "user at a moment in another zone", subject: "user:bob", at: "2026-03-01T10:00:00+01:00", wantSubject: "user:bob", wantAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		{name: "fractional seconds", subject: "user:bob", at: "2026-03-01T09:00:00.123456789Z", wantSubject: "user:bob", wantAt: time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)},
		{name: "external member in the subject", subject: "user:https://idp.example|bob", wantSubject: "user:https://idp.example|bob", wantAt: now},
		{name: "external member by parameter", subject: "user:bob", issuer: "https://idp.example", wantSubject: "user:https://idp.example|bob", wantAt: now},
		{name: "service account", subject: "service:0198c0de-0000-7000-8000-000000000001", wantSubject: "service:0198c0de-0000-7000-8000-000000000001", wantAt: now},
		{name: "knowledge base", resource: "kb:kb-1", wantResource: "kb:kb-1", wantAt: now},
		{name: "data source", resource: "datasource:ds_1", wantResource: "datasource:ds_1", wantAt: now},
		{name: "bot", resource: "bot:b.1", wantResource: "bot:b.1", wantAt: now},
		{name: "nothing asked", wantErr: "give subject"},
		{name: "both asked", subject: "user:bob", resource: "kb:x", wantErr: "not both"},
		{name: "unknown subject kind", subject: "role:admin", wantErr: "user:SUB or service:ID"},
		{name: "subject without kind", subject: "bob", wantErr: "user:SUB or service:ID"},
		{name: "empty sub", subject: "user:", wantErr: "subject must be 1 to"},
		{name: "bad characters", subject: "user:bob smith", wantErr: "may hold only"},
		{name: "issuer twice", subject: "user:https://a.example|bob", issuer: "https://b.example", wantErr: "names its issuer"},
		{name: "issuer not a URL", subject: "user:bob", issuer: "idp", wantErr: "absolute URL"},
		{name: "issuer of a service account", subject: "service:x", issuer: "https://idp.example", wantErr: "built-in issuer"},
		{name: "issuer of a resource", resource: "kb:x", issuer: "https://idp.example", wantErr: "user subject only"},
		{name: "unknown resource kind", resource: "doc:x", wantErr: "kb:ID, datasource:ID or bot:ID"},
		{name: "resource without id", resource: "kb:", wantErr: "resource id"},
		{name: "resource id with a colon", resource: "kb:a:b", wantErr: "resource id"},
		{name: "not RFC 3339", subject: "user:bob", at: "2026-03-01 09:00", wantErr: "RFC 3339"},
		{name: "unix seconds", subject: "user:bob", at: "1767225600", wantErr: "RFC 3339"},
		{name: "too long", subject: "user:" + strings.Repeat("a", 2000), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := accessreview.ParseQuery(tt.subject, tt.issuer, tt.resource, tt.at, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, accessreview.ErrInvalidQuery) || !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("ParseQuery = %+v, %v; want an invalid query error with %q", q, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			var gotSubject, gotResource string
			if q.Subject != nil {
				gotSubject = q.Subject.String()
			}
			if q.Resource != nil {
				gotResource = q.Resource.String()
			}
			if gotSubject != tt.wantSubject || gotResource != tt.wantResource || !q.At.Equal(tt.wantAt) || q.At.Location() != time.UTC {
				t.Errorf("ParseQuery = subject %q resource %q at %v; want %q %q %v", gotSubject, gotResource, q.At, tt.wantSubject, tt.wantResource, tt.wantAt)
			}
		})
	}
}

// FuzzParseQuery: the parser never panics, asks exactly one question when
// it accepts, and what it accepts reads back the same from its own
// spelling, so the answer names the subject or resource that was asked.
func FuzzParseQuery(f *testing.F) {
	for _, s := range [][4]string{
		{"user:bob", "", "", ""},
		{"user:bob", "https://idp.example", "", "2026-03-01T09:00:00Z"},
		{"user:https://idp.example|bob", "", "", "2026-03-01T09:00:00.5+02:00"},
		{"service:sa-1", "", "", ""},
		{"", "", "kb:kb-1", "2026-03-01T09:00:00Z"},
		{"", "", "datasource:x", ""},
		{"", "", "bot:b", "not a time"},
		{"user:", "", "kb:", ""},
		{"user:a|b", "", "", ""},
		{"user:x://|", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, subject, issuer, resource, at string) {
		q, err := accessreview.ParseQuery(subject, issuer, resource, at, now)
		if err != nil {
			if !errors.Is(err, accessreview.ErrInvalidQuery) {
				t.Fatalf("error %v does not wrap ErrInvalidQuery", err)
			}
			return
		}
		if (q.Subject == nil) == (q.Resource == nil) {
			t.Fatalf("accepted %+v: not exactly one question", q)
		}
		if q.At.Location() != time.UTC {
			t.Fatalf("at %v is not UTC", q.At)
		}
		if q.Subject != nil {
			again, err := accessreview.ParseSubject(q.Subject.String(), "")
			if err != nil || again != *q.Subject {
				t.Fatalf("subject %q reads back as %+v, %v", q.Subject.String(), again, err)
			}
		} else {
			again, err := accessreview.ParseResource(q.Resource.String())
			if err != nil || again != *q.Resource {
				t.Fatalf("resource %q reads back as %+v, %v", q.Resource.String(), again, err)
			}
		}
	})
}
