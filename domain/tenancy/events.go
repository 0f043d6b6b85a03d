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
	OrgID    string `json:"org_id" audit:"record"`
	Name     string `json:"name" audit:"record"`
	OwnerSub string `json:"owner_sub" audit:"record"`
}

// OrganizationRenamed records a new display name.
type OrganizationRenamed struct {
	Name string `json:"name" audit:"record"`
}

// OrganizationClosed ends an organization: every token of it stops working,
// every read model drops its rows, and its data key is destroyed, so that
// whatever of its content was sealed with that key can no longer be read.
// Name is the name the platform confirmed (a record: the organization's
// name is in its OrganizationCreated already). The platform principal that
// closed it is the event's actor.
type OrganizationClosed struct {
	Name string `json:"name,omitempty" audit:"record"`
}

// MemberAdded records a new member and its roles. A member is its issuer
// and sub together; Issuer is empty for the built-in issuer (so every event
// recorded before issuers were bound reads as it did).
type MemberAdded struct {
	Issuer string   `json:"issuer,omitempty" audit:"record"`
	Sub    string   `json:"sub" audit:"record"`
	Roles  []string `json:"roles" audit:"record"`
}

// MemberRolesChanged replaces a member's roles.
type MemberRolesChanged struct {
	Issuer string   `json:"issuer,omitempty" audit:"record"`
	Sub    string   `json:"sub" audit:"record"`
	Roles  []string `json:"roles" audit:"record"`
}

// MemberRemoved records that a member left or was removed.
type MemberRemoved struct {
	Issuer string `json:"issuer,omitempty" audit:"record"`
	Sub    string `json:"sub" audit:"record"`
}

// ServiceAccountCreated records a service account and its explicit
// permission list. TokenID is the jti of the one token issued for it.
type ServiceAccountCreated struct {
	ID          string    `json:"id" audit:"record"`
	Name        string    `json:"name" audit:"record"`
	Permissions []string  `json:"permissions" audit:"record"`
	CreatedBy   string    `json:"created_by" audit:"record"`
	TokenID     string    `json:"token_id" audit:"record"`
	ExpiresAt   time.Time `json:"expires_at" audit:"record"`
}

// ServiceAccountRevoked records that a service account's token stops working.
type ServiceAccountRevoked struct {
	ID string `json:"id" audit:"record"`
}

// ServiceAccountReassigned records that a service account now answers to
// another member: its effective permissions follow that member's from now
// on. CreatedBy is the new creator's principal subject (ISSUER|SUB for a
// member of an external issuer).
type ServiceAccountReassigned struct {
	ID                string `json:"id" audit:"record"`
	CreatedBy         string `json:"created_by" audit:"record"`
	PreviousCreatedBy string `json:"previous_created_by" audit:"record"`
}

func (ServiceAccountReassigned) EventType() string { return "ServiceAccountReassigned" }

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
		&ServiceAccountCreated{}, &ServiceAccountRevoked{}, &ServiceAccountReassigned{},
		&IssuerBound{}, &IssuerUnbound{},
		&OrganizationQuotasSet{},
	}
}
