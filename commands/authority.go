package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Deciding against the state appended to. A principal arrives resolved from
// the membership read model, which lags the log. Before a command's events
// are appended, the pipeline re-derives the principal's authority from the
// organization aggregate folded from its tenancy stream at a known version
// W, decides again with that, and appends only if the tenancy stream is
// still at W (eventstore.Store.AppendIf). A removal or demotion and a
// concurrent action of the member it concerns therefore serialize: the
// action lands before the removal, or is decided again after it.

// maxConditionRetries bounds how often a command decides again because the
// organization's tenancy stream moved between its decision and its append.
const maxConditionRetries = 8

// maxCachedOrgs bounds the organizations whose tenancy aggregate is kept.
const maxCachedOrgs = 4096

// authority keeps, per organization, the tenancy aggregate and its version.
type authority struct {
	mu   sync.Mutex
	orgs map[string]*orgFacts
}

// orgFacts is one organization's tenancy aggregate at version (exists
// false: the stream had no event when last read).
type orgFacts struct {
	mu      sync.Mutex
	loaded  bool
	org     *tenancy.Organization
	version uint64
	exists  bool
}

func newAuthority() *authority { return &authority{orgs: make(map[string]*orgFacts)} }

func (a *authority) facts(orgID string) *orgFacts {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.orgs[orgID]
	if f == nil {
		if len(a.orgs) >= maxCachedOrgs {
			for id := range a.orgs { // forget one at random (map order)
				delete(a.orgs, id)
				break
			}
		}
		f = &orgFacts{org: tenancy.New()}
		a.orgs[orgID] = f
	}
	return f
}

// refresh folds what was appended to the tenancy stream since f was read.
// f.mu must be held.
func (p *Pipeline) refresh(ctx context.Context, orgID string, f *orgFacts) error {
	stream := orgStream(orgID)
	const page = 500
	for {
		from := uint64(0)
		if f.exists {
			from = f.version + 1
		}
		envs, err := p.store.ReadStream(ctx, stream, from, page)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		for _, env := range envs {
			e, err := p.registry.Decode(env.Type, env.Data)
			if err != nil {
				return fmt.Errorf("read %s at version %d: %w", stream, env.StreamVersion, err)
			}
			f.org.Apply(e)
			f.version, f.exists = env.StreamVersion, true
		}
		f.loaded = true
		if len(envs) < page {
			return nil
		}
	}
}

// conditioned reports whether an append by who with decision d must be
// decided again against its organization's tenancy stream: every allowed
// action of a principal of an organization. A platform principal has no
// organization (it only creates organizations, appending to a new stream
// expecting none), and an append that was not allowed (the record of a
// refusal) grants nothing.
func conditioned(who access.Principal, d access.Decision) bool {
	return d.Allowed && who.Kind != access.KindPlatform && who.OrgID != "" && who.OrgID != access.PlatformScope
}

// rederive returns who with its authority as org says it is now: a user
// holds the roles it has as a member (none if it is not one), narrowed by
// its token scope; a service account holds its list only while it is not
// revoked; a principal acting for others (a process, a bot, a workflow)
// holds nothing more than its outermost invoker holds now.
func rederive(org *tenancy.Organization, who access.Principal) access.Principal {
	if len(who.OnBehalfOf) > 0 {
		invoker := who.OnBehalfOf[0]
		out := who
		out.Permissions = who.Permissions.Intersect(heldBy(org, invoker, who.TokenScope))
		return out
	}
	switch who.Kind {
	case access.KindUser:
		issuer, sub := access.SplitPrincipalSubject(who.Subject)
		roles, _ := org.MemberRoles(tenancy.MemberID{Issuer: issuer, Sub: sub})
		out := access.NewUser(who.OrgID, who.Subject, roles, who.TokenScope)
		out.CreatedBy = who.CreatedBy
		return out
	case access.KindService:
		out := who
		if !org.ServiceAccountActive(who.Subject) {
			out.Permissions = 0
		}
		return out
	}
	return who
}

// heldBy is what subject holds in org now: a member's roles' permissions
// (narrowed by scope), a live service account's everything (its own list
// narrowed the delegate already), nothing otherwise.
func heldBy(org *tenancy.Organization, subject string, scope *access.PermissionSet) access.PermissionSet {
	issuer, sub := access.SplitPrincipalSubject(subject)
	if roles, ok := org.MemberRoles(tenancy.MemberID{Issuer: issuer, Sub: sub}); ok {
		perms := access.PermissionsOf(roles)
		if scope != nil {
			perms = perms.Intersect(*scope)
		}
		return perms
	}
	if org.ServiceAccountActive(subject) {
		return ^access.PermissionSet(0)
	}
	return 0
}

// appendDecided appends evs for who, first deciding d's permission again
// against the organization's tenancy aggregate and conditioning the append
// on the tenancy stream's version that decision used. It returns an error
// wrapping eventstore.ErrConditionFailed when that stream moved (the
// caller decides again), and a forbidden error, recorded as a denial,
// when the principal no longer holds the permission.
func (p *Pipeline) appendDecided(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	expected eventstore.ExpectedVersion, evs []domain.Event) (eventstore.AppendResult, time.Time, error) {
	if !conditioned(who, d) {
		return p.append(ctx, who, d, stream, expected, evs)
	}
	f := p.authority.facts(who.OrgID)
	f.mu.Lock()
	if !f.loaded {
		if err := p.refresh(ctx, who.OrgID, f); err != nil {
			f.mu.Unlock()
			return eventstore.AppendResult{}, time.Time{}, err
		}
	}
	now := rederive(f.org, who)
	again := access.Decide(now, d.Permission, access.OrgResource(who.OrgID))
	if !again.Allowed {
		// The cache may be behind: deny only on what the stream says now.
		if err := p.refresh(ctx, who.OrgID, f); err != nil {
			f.mu.Unlock()
			return eventstore.AppendResult{}, time.Time{}, err
		}
		now = rederive(f.org, who)
		again = access.Decide(now, d.Permission, access.OrgResource(who.OrgID))
	}
	cond := eventstore.Condition{Stream: orgStream(who.OrgID), Expected: eventstore.NoStream()}
	if f.exists {
		cond.Expected = eventstore.Exact(f.version)
	}
	f.mu.Unlock()
	if !again.Allowed {
		p.RecordDenial(ctx, now, again, stream.String())
		return eventstore.AppendResult{}, time.Time{}, fmt.Errorf("%w: %s (membership at %s)", domain.ErrForbidden, again.Reason(), cond.Expected)
	}
	res, at, err := p.appendIf(ctx, now, d, stream, expected, &cond, evs)
	if errors.Is(err, eventstore.ErrConditionFailed) {
		f.mu.Lock()
		rerr := p.refresh(ctx, who.OrgID, f)
		f.mu.Unlock()
		if rerr != nil {
			return res, at, rerr
		}
	}
	return res, at, err
}

// conditionBackoff waits a little, more with each attempt, jittered so
// that writers that lost together do not collide again.
func conditionBackoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt+1)*int64(time.Millisecond)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
