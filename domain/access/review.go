package access

// Helpers for reviewing decisions after the fact (which permissions a set
// holds, which subject a grant names), so that a review decides each with
// Decide rather than by a rule of its own.

// Permissions returns the permissions of s, in catalog order.
func (s PermissionSet) Permissions() []Permission {
	out := make([]Permission, 0, s.Len())
	for p := PermissionUnknown + 1; p < permissionCount; p++ {
		if s.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// Subject returns the subject the grant names, as ParseGrant reads it:
// "user:SUB", "role:ROLE" or "service:ID".
func (g Grant) Subject() string {
	switch g.Kind {
	case GrantUser:
		return "user:" + g.Value
	case GrantRole:
		return "role:" + g.Value
	case GrantService:
		return "service:" + g.Value
	}
	return "unknown:" + g.Value
}
