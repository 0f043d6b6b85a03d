package tenancy

import (
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// MaxBoundIssuers bounds how many external issuers one organization binds.
const MaxBoundIssuers = 16

// IssuerBound records that the organization trusts an external issuer: its
// tokens may name this organization, and its subjects may be members.
type IssuerBound struct {
	Issuer string `json:"issuer" audit:"record"`
}

// IssuerUnbound records that the organization no longer trusts an external
// issuer. Its members stay on record but cannot act until it is bound again.
type IssuerUnbound struct {
	Issuer string `json:"issuer" audit:"record"`
}

func (IssuerBound) EventType() string   { return "IssuerBound" }
func (IssuerUnbound) EventType() string { return "IssuerUnbound" }

// MemberID identifies a member: the issuer that vouches for it ("" is the
// deployment's built-in issuer) and its subject there. The same sub from
// two issuers is two members.
type MemberID struct {
	Issuer string
	Sub    string
}

// BuiltIn returns the id of the built-in issuer's member sub.
func BuiltIn(sub string) MemberID { return MemberID{Sub: sub} }

// Subject returns the principal subject the member acts under
// (access.PrincipalSubject).
func (m MemberID) Subject() string { return access.PrincipalSubject(m.Issuer, m.Sub) }

// String names the member in messages.
func (m MemberID) String() string { return m.Subject() }

// IssuerBound reports whether the organization trusts issuer. The built-in
// issuer ("") is always trusted.
func (o *Organization) IssuerBound(issuer string) bool {
	return issuer == "" || o.issuers[issuer]
}

// BoundIssuers returns the external issuers the organization trusts, sorted.
func (o *Organization) BoundIssuers() []string {
	out := make([]string, 0, len(o.issuers))
	for iss := range o.issuers {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}

// BindIssuer decides trusting an external issuer. Binding one already bound
// changes nothing. Whether the deployment trusts the issuer at all is the
// caller's to check; this checks the organization's rules.
func (o *Organization) BindIssuer(issuer string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !access.CheckExternalIssuer(issuer) {
		return nil, fmt.Errorf("%w: issuer must be an absolute URL of at most %d printable characters without spaces or '|'",
			domain.ErrInvalid, access.MaxIssuerLen)
	}
	if o.issuers[issuer] {
		return nil, nil
	}
	if len(o.issuers) >= MaxBoundIssuers {
		return nil, fmt.Errorf("%w: an organization binds at most %d issuers", domain.ErrInvalid, MaxBoundIssuers)
	}
	return []domain.Event{&IssuerBound{Issuer: issuer}}, nil
}

// UnbindIssuer decides no longer trusting an external issuer. It is refused
// when every owner who can still sign in is a member of that issuer: the
// organization would be left without an owner able to act.
func (o *Organization) UnbindIssuer(issuer string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !o.issuers[issuer] {
		return nil, fmt.Errorf("%w: issuer %.80q is not bound", domain.ErrNotFound, issuer)
	}
	for id, roles := range o.members {
		if id.Issuer != issuer && o.IssuerBound(id.Issuer) && slices.Contains(roles, access.RoleOwner) {
			return []domain.Event{&IssuerUnbound{Issuer: issuer}}, nil
		}
	}
	return nil, fmt.Errorf("%w: every owner who can act comes from issuer %.80q; make another member owner first",
		domain.ErrConflict, issuer)
}

// checkNewMember validates the id of a member about to be added: a valid
// sub, from the built-in issuer or one the organization bound, and for the
// built-in issuer not in the form reserved to external members.
func (o *Organization) checkNewMember(id MemberID) error {
	if err := domain.CheckSubject("sub", id.Sub); err != nil {
		return err
	}
	if id.Issuer == "" {
		if access.ExternalForm(id.Sub) {
			return fmt.Errorf("%w: sub may not have the form ISSUER|SUB, which names members of external issuers", domain.ErrInvalid)
		}
		return nil
	}
	if !o.issuers[id.Issuer] {
		return fmt.Errorf("%w: issuer %.80q is not bound to the organization", domain.ErrInvalid, id.Issuer)
	}
	return nil
}
