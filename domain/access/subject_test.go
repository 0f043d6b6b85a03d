package access

import "testing"

func TestPrincipalSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		issuer, sub, subject string
	}{
		{"", "dan", "dan"},
		{"", "auth0|123", "auth0|123"},
		{"https://idp.example", "dan", "https://idp.example|dan"},
		{"https://idp.example/realms/a", "auth0|123", "https://idp.example/realms/a|auth0|123"},
	}
	for _, tt := range tests {
		got := PrincipalSubject(tt.issuer, tt.sub)
		if got != tt.subject {
			t.Errorf("PrincipalSubject(%q, %q) = %q, want %q", tt.issuer, tt.sub, got, tt.subject)
		}
		if iss, sub := SplitPrincipalSubject(got); iss != tt.issuer || sub != tt.sub {
			t.Errorf("SplitPrincipalSubject(%q) = %q, %q", got, iss, sub)
		}
		if ExternalForm(got) != (tt.issuer != "") {
			t.Errorf("ExternalForm(%q) = %v", got, !(tt.issuer != ""))
		}
	}
}

func TestCheckExternalIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		issuer string
		ok     bool
	}{
		{"https://idp.example", true},
		{"https://idp.example/realms/acme", true},
		{"http://127.0.0.1:8080", true},
		{"", false},
		{"idp", false},
		{"://idp", false},
		{"https://", false},
		{"1https://idp", false},
		{"https://idp|x", false},
		{"https://idp x", false},
		{"https://idp\x00", false},
		{"https://idp.example/é", false},
		{"https://" + string(make([]byte, MaxIssuerLen)), false},
	}
	for _, tt := range tests {
		if got := CheckExternalIssuer(tt.issuer); got != tt.ok {
			t.Errorf("CheckExternalIssuer(%q) = %v, want %v", tt.issuer, got, tt.ok)
		}
	}
}
