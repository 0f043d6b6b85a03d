package tenancy

import (
	"time"

	"github.com/palisadehq/palisade/domain"
)

// Category is the stream category of organizations.
const Category = "org"

// OrganizationCreated starts an organization's stream. The platform
// principal that created it is the event's actor.
type OrganizationCreated struct {
	OrgID    string `json:"org_id"`
	Name     string `json:"name"`
	OwnerSub string `json:"owner_sub"`
}

// OrganizationRenamed records a new display name.
type OrganizationRenamed struct {
	Name string `json:"name"`
}

// OrganizationClosed ends an organization: every token of it stops working.
type OrganizationClosed struct{}

// MemberAdded records a new member and its roles. A member is its issuer
// and sub together; Issuer is empty for the built-in issuer (so every event
// recorded before issuers were bound reads as it did).
type MemberAdded struct {
	Issuer string   `json:"issuer,omitempty"`
	Sub    string   `json:"sub"`
	Roles  []string `json:"roles"`
}

// MemberRolesChanged replaces a member's roles.
type MemberRolesChanged struct {
	Issuer string   `json:"issuer,omitempty"`
	Sub    string   `json:"sub"`
	Roles  []string `json:"roles"`
}

// MemberRemoved records that a member left or was removed.
type MemberRemoved struct {
	Issuer string `json:"issuer,omitempty"`
	Sub    string `json:"sub"`
}

// ServiceAccountCreated records a service account and its explicit
// permission list. TokenID is the jti of the one token issued for it.
type ServiceAccountCreated struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	CreatedBy   string    `json:"created_by"`
	TokenID     string    `json:"token_id"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// ServiceAccountRevoked records that a service account's token stops working.
type ServiceAccountRevoked struct {
	ID string `json:"id"`
}

func (OrganizationCreated) EventType() string   { return "OrganizationCreated" }
func (OrganizationRenamed) EventType() string   { return "OrganizationRenamed" }
func (OrganizationClosed) EventType() string    { return "OrganizationClosed" }
func (MemberAdded) EventType() string           { return "MemberAdded" }
func (MemberRolesChanged) EventType() string    { return "MemberRolesChanged" }
func (MemberRemoved) EventType() string         { return "MemberRemoved" }
func (ServiceAccountCreated) EventType() string { return "ServiceAccountCreated" }
func (ServiceAccountRevoked) EventType() string { return "ServiceAccountRevoked" }

// Events returns a zero value of every event type of this package, for
// decoders that map type names to Go types.
func Events() []domain.Event {
	return []domain.Event{
		&OrganizationCreated{}, &OrganizationRenamed{}, &OrganizationClosed{},
		&MemberAdded{}, &MemberRolesChanged{}, &MemberRemoved{},
		&ServiceAccountCreated{}, &ServiceAccountRevoked{},
		&IssuerBound{}, &IssuerUnbound{},
		&OrganizationQuotasSet{},
	}
}
