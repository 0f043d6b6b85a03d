package netguard

import (
	"net/netip"
	"testing"
)

// FuzzParseAllowed holds ParseAllowed to never panic and to give back only
// masked prefixes that parse again to the same policy.
func FuzzParseAllowed(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.0.0.0/8, fd00::/8", "::ffff:10.0.0.0/104", "10.1.2.3/8", ",", "fe80::%x/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseAllowed(s)
		if err != nil {
			return
		}
		for _, prefix := range p.Allowed {
			if !prefix.IsValid() || prefix.Masked() != prefix || prefix.Addr().Is4In6() {
				t.Fatalf("ParseAllowed(%q) holds %v", s, prefix)
			}
		}
		again, err := ParseAllowed(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("ParseAllowed(%q) = %q, which parses back as %q, %v", s, p, again, err)
		}
	})
}

// FuzzCheck holds Check to never panic, to refuse every link-local address
// in any of its forms whatever the policy, and to judge an IPv4 address
// and its IPv4-mapped form alike.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{169, 254, 169, 254}, "169.254.0.0/16")
	f.Add(netip.MustParseAddr("::ffff:169.254.169.254").AsSlice(), "")
	f.Add(netip.MustParseAddr("64:ff9b::a9fe:a9fe").AsSlice(), "::/0")
	f.Add([]byte{10, 0, 0, 1}, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, raw []byte, allowed string) {
		p, err := ParseAllowed(allowed)
		if err != nil {
			p = Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
		}
		addr, ok := netip.AddrFromSlice(raw)
		if !ok {
			if p.Check(addr) == nil {
				t.Fatal("Check allowed an invalid address")
			}
			return
		}
		err = p.Check(addr)
		v4 := addr.Unmap()
		if v4.IsLinkLocalUnicast() && err == nil {
			t.Fatalf("Check(%s) allowed a link-local address", addr)
		}
		if v4.Is4() {
			forms := []netip.Addr{
				netip.AddrFrom16(v4.As16()), // mapped
				netip.AddrFrom16([16]byte{12: v4.As4()[0], 13: v4.As4()[1], 14: v4.As4()[2], 15: v4.As4()[3]}),                                  // compatible
				netip.AddrFrom16([16]byte{0: 0, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4.As4()[0], 13: v4.As4()[1], 14: v4.As4()[2], 15: v4.As4()[3]}), // NAT64
			}
			if (p.Check(forms[0]) == nil) != (err == nil) {
				t.Fatalf("Check(%s) = %v but Check(%s) = %v", addr, err, forms[0], p.Check(forms[0]))
			}
			if v4.IsLinkLocalUnicast() {
				for _, form := range forms {
					if p.Check(form) == nil {
						t.Fatalf("Check(%s) allowed a form of link-local %s", form, v4)
					}
				}
			}
		}
	})
}
