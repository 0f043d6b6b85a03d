package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// TenancyProjection builds the tenancy read model.
func TenancyProjection(m TenancyModel) *consumer.Group {
	return &consumer.Group{Name: "tenancy", Handlers: append(issuerHandlers(m),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.OrganizationCreated) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			if err := m.PutOrg(ctx, scope, Org{ID: env.OrgID, Name: e.Name, CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt}); err != nil {
				return err
			}
			return m.PutMember(ctx, scope, Member{Sub: e.OwnerSub, Roles: []string{access.RoleOwner.String()}, AddedAt: env.OccurredAt, UpdatedAt: env.OccurredAt})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.OrganizationRenamed) error {
			return updateOrg(ctx, m, env, func(o *Org) { o.Name = e.Name })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
			if err := updateOrg(ctx, m, env, func(o *Org) { o.Closed, o.Name = true, "" }); err != nil {
				return err
			}
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PurgeOrg(ctx, scope)
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.MemberAdded) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutMember(ctx, scope, Member{Issuer: e.Issuer, Sub: e.Sub, Roles: e.Roles, AddedAt: env.OccurredAt, UpdatedAt: env.OccurredAt})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.MemberRolesChanged) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			member, err := m.Member(ctx, scope, e.Issuer, e.Sub)
			if err != nil {
				return err
			}
			member.Roles, member.UpdatedAt = e.Roles, env.OccurredAt
			return m.PutMember(ctx, scope, member)
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.MemberRemoved) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.DeleteMember(ctx, scope, e.Issuer, e.Sub)
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.ServiceAccountCreated) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutServiceAccount(ctx, scope, ServiceAccount{
				ID: e.ID, Name: e.Name, Permissions: e.Permissions, CreatedBy: e.CreatedBy,
				CreatedAt: env.OccurredAt, ExpiresAt: e.ExpiresAt, TokenID: e.TokenID,
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.ServiceAccountRevoked) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			sa, err := m.ServiceAccount(ctx, scope, e.ID)
			if err != nil {
				return err
			}
			at := env.OccurredAt
			sa.Revoked, sa.RevokedAt = true, &at
			return m.PutServiceAccount(ctx, scope, sa)
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.ServiceAccountReassigned) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			sa, err := m.ServiceAccount(ctx, scope, e.ID)
			if err != nil {
				return err
			}
			sa.CreatedBy = e.CreatedBy
			return m.PutServiceAccount(ctx, scope, sa)
		}),
	)}
}

func updateOrg(ctx context.Context, m TenancyModel, env eventstore.Envelope, change func(*Org)) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	org, err := m.Org(ctx, scope)
	if err != nil {
		return err
	}
	change(&org)
	org.UpdatedAt = env.OccurredAt
	return m.PutOrg(ctx, scope, org)
}

// BotProjection builds the bot read model.
func BotProjection(m BotModel) *consumer.Group {
	return &consumer.Group{Name: "bots", Handlers: []consumer.Handler{
		purgeOnClose(m),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *bots.BotCreated) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutBot(ctx, scope, Bot{
				ID: e.ID, Name: e.Name, Instructions: e.Instructions, Grants: e.Grants,
				CreatedBy: env.Actor.Subject, CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt,
				Version: env.StreamVersion,
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *bots.BotUpdated) error {
			return updateBot(ctx, m, env, func(b *Bot) {
				if e.Name != nil {
					b.Name = *e.Name
				}
				if e.Instructions != nil {
					b.Instructions = *e.Instructions
				}
				if e.Grants != nil {
					b.Grants = *e.Grants
				}
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *bots.BotArchived) error {
			return updateBot(ctx, m, env, func(b *Bot) { b.Archived = true })
		}),
	}}
}

func updateBot(ctx context.Context, m BotModel, env eventstore.Envelope, change func(*Bot)) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	b, err := m.Bot(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return err
	}
	change(&b)
	b.UpdatedAt, b.Version = env.OccurredAt, env.StreamVersion
	return m.PutBot(ctx, scope, b)
}

// AuditProjection indexes every event of every organization for auditors.
//
// When it applies an organization's OrganizationClosed it rewrites every
// event of that organization with its content values shredded
// (events.Shredded, JSON null), keeping the record: exactly what a
// rebuild reads once the organization's key is destroyed. Not a hash and
// size (events.RedactedContent): a plain hash of short content kept after
// the close would confirm a guess of it, and the key that would make it
// a keyed one may already be gone. Digest fields are already keyed in the
// log (events.DeclareDigest) and stay.
func AuditProjection(m AuditModel, prototypes []domain.Event) *consumer.Group {
	registry := events.NewRegistry()
	redact := func(eventType string, data json.RawMessage) (json.RawMessage, error) {
		return registry.MapContent(eventType, data, func(string, []byte) ([]byte, error) {
			return events.Shredded, nil
		})
	}
	closed := (tenancy.OrganizationClosed{}).EventType()
	return &consumer.Group{Name: "audit", Handlers: consumer.OnEvery(prototypes, func(ctx context.Context, env eventstore.Envelope) error {
		scope, err := eventScope(env)
		if err != nil {
			return err
		}
		// The span id only links traces (package tracing); the audit
		// record keeps the trace id, as every adapter can store it.
		env.SpanID = ""
		if err := m.Add(ctx, scope, env); err != nil {
			return err
		}
		if env.Type == closed && env.Stream.Category == tenancy.Category {
			return m.RedactOrg(ctx, scope, redact)
		}
		return nil
	})}
}

// eventScope is the one place projections build a scope: from the event's
// own organization, after checking that its stream agrees.
func eventScope(env eventstore.Envelope) (access.Scope, error) {
	if env.OrgID != env.Stream.OrgID {
		return access.Scope{}, fmt.Errorf("%w: event org %q in stream %s", eventstore.ErrOrgMismatch, env.OrgID, env.Stream)
	}
	return access.EventScope(env.OrgID)
}

// IsNotFound reports whether err means a record does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, domain.ErrNotFound)
}
