package accessreview

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// ErrInvalidQuery: the subject, resource or moment of a question cannot be
// read. It wraps domain.ErrInvalid.
var ErrInvalidQuery = fmt.Errorf("%w: access review", domain.ErrInvalid)

// maxParamLen bounds each parameter before it is looked at.
const maxParamLen = 1024

// Subject is whom a question is about: a member ("user:SUB", SUB being the
// principal subject, ISSUER|SUB for a member of an external issuer) or a
// service account ("service:ID").
type Subject struct {
	Kind access.Kind // KindUser or KindService
	// ID is the principal subject of a user, the id of a service account.
	ID string
}

// String returns the subject as the API names it.
func (s Subject) String() string { return string(s.Kind) + ":" + s.ID }

// ResourceKind is the kind of resource a question may name.
type ResourceKind string

// The resources whose readers can be reviewed.
const (
	KnowledgeBase ResourceKind = "kb"
	DataSource    ResourceKind = "datasource"
	Bot           ResourceKind = "bot"
)

// Resource is what a question is about: "kb:ID", "datasource:ID" or
// "bot:ID".
type Resource struct {
	Kind ResourceKind
	ID   string
}

// String returns the resource as the API names it.
func (r Resource) String() string { return string(r.Kind) + ":" + r.ID }

// Query is one question: about a subject or about a resource (exactly one
// is set), at a moment.
type Query struct {
	Subject  *Subject
	Resource *Resource
	At       time.Time
}

// ParseQuery reads the parameters of a question: subject ("user:SUB",
// "user:ISSUER|SUB" or "service:ID") or resource ("kb:ID", "datasource:ID"
// or "bot:ID"), exactly one of them; issuer, the external issuer of a
// "user:SUB" subject (the same as "user:ISSUER|SUB"); at, an RFC 3339
// time, now when empty. Every error wraps ErrInvalidQuery.
func ParseQuery(subject, issuer, resource, at string, now time.Time) (Query, error) {
	var q Query
	for _, p := range [...]struct{ name, v string }{{"subject", subject}, {"issuer", issuer}, {"resource", resource}, {"at", at}} {
		if len(p.v) > maxParamLen {
			return Query{}, fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidQuery, p.name, maxParamLen)
		}
	}
	switch {
	case subject == "" && resource == "":
		return Query{}, fmt.Errorf("%w: give subject (user:SUB or service:ID) or resource (kb:ID, datasource:ID or bot:ID)", ErrInvalidQuery)
	case subject != "" && resource != "":
		return Query{}, fmt.Errorf("%w: give subject or resource, not both", ErrInvalidQuery)
	case subject != "":
		s, err := ParseSubject(subject, issuer)
		if err != nil {
			return Query{}, err
		}
		q.Subject = &s
	default:
		if issuer != "" {
			return Query{}, fmt.Errorf("%w: issuer goes with a user subject only", ErrInvalidQuery)
		}
		r, err := ParseResource(resource)
		if err != nil {
			return Query{}, err
		}
		q.Resource = &r
	}
	var err error
	if q.At, err = ParseAt(at, now); err != nil {
		return Query{}, err
	}
	return q, nil
}

// ParseSubject reads "user:SUB", "user:ISSUER|SUB" or "service:ID"; issuer,
// when not empty, is the external issuer of a "user:SUB".
func ParseSubject(s, issuer string) (Subject, error) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok {
		return Subject{}, fmt.Errorf("%w: subject must be user:SUB or service:ID", ErrInvalidQuery)
	}
	switch access.Kind(kind) {
	case access.KindUser:
		iss, sub := access.SplitPrincipalSubject(id)
		if issuer != "" {
			if iss != "" {
				return Subject{}, fmt.Errorf("%w: the subject names its issuer already", ErrInvalidQuery)
			}
			iss = issuer
		}
		if iss != "" && !access.CheckExternalIssuer(iss) {
			return Subject{}, fmt.Errorf("%w: issuer must be an absolute URL without spaces or '|'", ErrInvalidQuery)
		}
		if err := domain.CheckSubject("subject", sub); err != nil {
			return Subject{}, errors.Join(ErrInvalidQuery, err)
		}
		if iss == "" && access.ExternalForm(sub) {
			return Subject{}, fmt.Errorf("%w: subject has the form of an external member", ErrInvalidQuery)
		}
		return Subject{Kind: access.KindUser, ID: access.PrincipalSubject(iss, sub)}, nil
	case access.KindService:
		if issuer != "" {
			return Subject{}, fmt.Errorf("%w: service accounts come only from the built-in issuer", ErrInvalidQuery)
		}
		if err := domain.CheckSubject("subject", id); err != nil {
			return Subject{}, errors.Join(ErrInvalidQuery, err)
		}
		return Subject{Kind: access.KindService, ID: id}, nil
	}
	return Subject{}, fmt.Errorf("%w: subject must be user:SUB or service:ID", ErrInvalidQuery)
}

// ParseResource reads "kb:ID", "datasource:ID" or "bot:ID".
func ParseResource(s string) (Resource, error) {
	kind, id, _ := strings.Cut(s, ":")
	switch k := ResourceKind(kind); k {
	case KnowledgeBase, DataSource, Bot:
		if err := domain.CheckSubject("resource id", id); err != nil || strings.ContainsAny(id, ":|") {
			return Resource{}, fmt.Errorf("%w: resource id must be 1 to %d letters, digits or .-_~@+", ErrInvalidQuery, domain.MaxSubjectLen)
		}
		return Resource{Kind: k, ID: id}, nil
	}
	return Resource{}, fmt.Errorf("%w: resource must be kb:ID, datasource:ID or bot:ID", ErrInvalidQuery)
}

// ParseAt reads an RFC 3339 time (fractional seconds allowed), returned in
// UTC; empty is now.
func ParseAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: at must be an RFC 3339 time such as 2026-01-02T15:04:05Z", ErrInvalidQuery)
	}
	return t.UTC(), nil
}
