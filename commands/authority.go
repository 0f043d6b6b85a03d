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
const maxConditionRetries = 16

// baseBackoff and maxBackoff bound the wait before deciding again.
const (
	baseBackoff = 500 * time.Microsecond
	maxBackoff  = 20 * time.Millisecond
)

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
	// gate serializes, within this process, appends to the tenancy stream
	// (exclusive) against the commands decided on it (shared), so that the
	// condition of the latter fails only when another process wrote to the
	// stream; without it a burst of membership changes could make every
	// concurrent command lose its condition again and again.
	gate sync.RWMutex
	// mu guards the rest.
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

// forget drops what is kept of orgID, after this process changed it: the
// next command reads the tenancy stream again instead of losing its
// condition first.
func (a *authority) forget(orgID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.orgs[orgID]; f != nil {
		f.mu.Lock()
		f.loaded = false
		f.mu.Unlock()
	}
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
		if len(envs) < page {
			f.loaded = true
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
// revoked and never more than its creator (when known) holds now; a
// principal acting for others (a process, a bot, a workflow)
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
		if who.CreatedBy != "" {
			// Never more than its creator holds at this version.
			out.Permissions = out.Permissions.Intersect(heldBy(org, who.CreatedBy, nil))
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

// hold takes the gate of who's organization for one attempt of a command
// by who to stream (see orgFacts.gate) and returns its release.
func (p *Pipeline) hold(who access.Principal, d access.Decision, stream eventstore.StreamName) (release func()) {
	if !conditioned(who, d) {
		return func() {}
	}
	f := p.authority.facts(who.OrgID)
	if stream == orgStream(who.OrgID) {
		f.gate.Lock()
		return f.gate.Unlock
	}
	f.gate.RLock()
	return f.gate.RUnlock
}

// appendDecided appends evs for who, first deciding d's permission again
// against the organization's tenancy aggregate and conditioning the append
// on the tenancy stream's version that decision used. It returns an error
// wrapping eventstore.ErrConditionFailed when that stream moved (the
// caller decides again), and a forbidden error, recorded as a denial,
// when the principal no longer holds the permission.
func (p *Pipeline) appendDecided(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	agg aggregate, expected eventstore.ExpectedVersion, evs []domain.Event) (eventstore.AppendResult, time.Time, error) {
	if !conditioned(who, d) {
		return p.append(ctx, who, d, stream, expected, evs)
	}
	tenancyStream := orgStream(who.OrgID)
	if loaded, ok := agg.(*tenancy.Organization); ok && stream == tenancyStream {
		// The command appends to the tenancy stream itself, at the
		// version it loaded: decide on that, the expected version is the
		// condition.
		now := rederive(loaded, who)
		again := access.Decide(now, d.Permission, access.OrgResource(who.OrgID))
		if !again.Allowed {
			p.RecordDenial(ctx, now, again, stream.String())
			return eventstore.AppendResult{}, time.Time{}, fmt.Errorf("%w: %s (membership at %s)", domain.ErrForbidden, again.Reason(), expected)
		}
		res, at, err := p.append(ctx, now, d, stream, expected, evs)
		if err == nil {
			p.authority.forget(who.OrgID)
		}
		return res, at, err
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
	cond := eventstore.Condition{Stream: tenancyStream, Expected: eventstore.NoStream()}
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
		// Read what moved the stream, so that the next decision starts
		// from there.
		f.mu.Lock()
		if rerr := p.refresh(ctx, who.OrgID, f); rerr != nil {
			err = rerr
		}
		f.mu.Unlock()
	}
	return res, at, err
}

// retryBackoff waits a little before a command decides again, up to twice
// as long with each attempt (at most maxBackoff), jittered so that writers
// that lost together do not collide again.
func retryBackoff(ctx context.Context, attempt int) error {
	ceiling := min(baseBackoff<<min(attempt, 10), maxBackoff)
	d := time.Duration(rand.Int64N(int64(ceiling))) + 1
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refuseClosed refuses an append to any stream of a closed organization
// but its tenancy stream (whose aggregate refuses by itself): after
// OrganizationClosed nothing more is recorded for it, not a process's
// refusal nor a denial, so no read model gains a row of it again. It reads
// the organization's aggregate as this process last folded it (closing in
// this process makes it read the stream again).
func (p *Pipeline) refuseClosed(ctx context.Context, stream eventstore.StreamName) error {
	org := stream.OrgID
	if org == "" || org == access.PlatformScope || stream == orgStream(org) {
		return nil
	}
	f := p.authority.facts(org)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		if err := p.refresh(ctx, org, f); err != nil {
			return err
		}
	}
	if f.org.Closed() {
		return fmt.Errorf("append to %s: %w", stream, tenancy.ErrClosed)
	}
	return nil
}
