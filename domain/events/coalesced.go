package events

import "time"

// AccessDenialsCoalesced records denials that were counted rather than
// recorded one by one: after the first AccessDenied of a principal for a
// permission, the ones that follow within a window are summed into one
// event at the window's end, with the envelope's actor being that
// principal. Every denial is in the record: the AccessDenied events plus
// the Count of these.
type AccessDenialsCoalesced struct {
	Action     string `json:"action" audit:"record"`
	Permission string `json:"permission,omitempty" audit:"record"`
	// Reason is the last coalesced denial's reason.
	Reason string `json:"reason" audit:"record"`
	// Count is how many denials this event stands for.
	Count   uint64    `json:"count"`
	FirstAt time.Time `json:"first_at" audit:"record"`
	LastAt  time.Time `json:"last_at" audit:"record"`
	// Resources names up to ten distinct resources the denials were for.
	Resources     []string `json:"resources,omitempty" audit:"record"`
	WindowSeconds int64    `json:"window_seconds"`
}

func (AccessDenialsCoalesced) EventType() string { return "AccessDenialsCoalesced" }
