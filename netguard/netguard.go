// Package netguard owns the checks on where a data source may reach: the
// network addresses a connection may go to ([Policy]) and the SQLite files
// a source may open ([SQLitePath]).
//
// A [Policy] checks the address actually connected to, after name
// resolution and for every address attempted ([Policy.Control]), so that a
// name resolving to a refused address, or re-resolving to one later (DNS
// rebinding), is refused too. Link-local addresses, where cloud metadata
// services live, are refused whatever the allow-list says; without an
// allow-list, so are loopback and the deployment's own services
// ([Policy.Own]). The package must never fall back to allowing an address
// it cannot parse.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

var (
	// ErrAlwaysRefused is wrapped by the error for an address no policy
	// allows: link-local (cloud metadata), unspecified, multicast,
	// broadcast, "this network", and IPv6 forms embedding a link-local IPv4
	// address.
	ErrAlwaysRefused = errors.New("netguard: address is never allowed")
	// ErrNotAllowed is wrapped by the error for an address outside the
	// allow-list (PALISADE_DATASOURCE_ALLOWED_NETWORKS).
	ErrNotAllowed = errors.New("netguard: address is outside the allowed networks")
)

// Policy decides which addresses a data source may connect to. The zero
// Policy allows every address except those always refused, loopback and
// Own: a tenant's database is somewhere else than the server itself, and a
// local database often trusts local connections.
type Policy struct {
	// Allowed lists the networks connections may reach; empty means every
	// network but loopback and Own. Prefixes hold IPv4 networks as IPv4,
	// not IPv4-mapped IPv6. Listing a network is the operator's choice,
	// and allows its loopback or Own addresses too.
	Allowed []netip.Prefix
	// Own lists the addresses of the deployment's own services (its
	// read-model database, event store, Kafka brokers), refused unless
	// Allowed names them.
	Own []netip.Addr
}

// ParseAllowed parses PALISADE_DATASOURCE_ALLOWED_NETWORKS: CIDRs
// separated by commas, spaces around them ignored. An empty or blank string
// gives the Policy that allows every address but loopback (and Own,
// which the caller adds). An entry that is empty, not
// a CIDR, or has host bits set (10.1.2.3/8, likely a typo for a /32) is an
// error naming it; an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) is
// taken as the IPv4 network it maps.
func ParseAllowed(s string) (Policy, error) {
	if strings.TrimSpace(s) == "" {
		return Policy{}, nil
	}
	var allowed []netip.Prefix
	var problems []string
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		p, err := parsePrefix(entry)
		if err != nil {
			problems = append(problems, fmt.Sprintf("entry %d %q: %v", i+1, entry, err))
			continue
		}
		allowed = append(allowed, p)
	}
	if len(problems) > 0 {
		return Policy{}, fmt.Errorf("netguard: allowed networks: %s", strings.Join(problems, "; "))
	}
	return Policy{Allowed: allowed}, nil
}

func parsePrefix(entry string) (netip.Prefix, error) {
	if entry == "" {
		return netip.Prefix{}, errors.New("empty")
	}
	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR such as 10.0.0.0/8 or fd00::/8")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("host bits set; the network is %s", p.Masked())
	}
	if p.Addr().Is4In6() {
		// Masked, so at least /96: a shorter prefix clears the ffff.
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// String writes the policy back in the PALISADE_DATASOURCE_ALLOWED_NETWORKS
// format; "" for every address.
func (p Policy) String() string {
	parts := make([]string, len(p.Allowed))
	for i, prefix := range p.Allowed {
		parts[i] = prefix.String()
	}
	return strings.Join(parts, ",")
}

// Check returns nil if a connection to addr is allowed. IPv4-mapped IPv6
// addresses are checked as the IPv4 address they map, and a zone is
// ignored.
func (p Policy) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrAlwaysRefused)
	}
	addr = addr.WithZone("").Unmap()
	if reason := alwaysRefused(addr); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrAlwaysRefused, addr, reason)
	}
	if len(p.Allowed) == 0 {
		switch {
		case addr.IsLoopback():
			return fmt.Errorf("%w: %s is loopback, the server itself (list it in the allowed networks to allow it)", ErrNotAllowed, addr)
		case slices.Contains(p.Own, addr):
			return fmt.Errorf("%w: %s is one of this deployment's own services (list it in the allowed networks to allow it)", ErrNotAllowed, addr)
		}
		return nil
	}
	for _, prefix := range p.Allowed {
		if prefix.Contains(addr) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrNotAllowed, addr)
}

var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")
	broadcast    = netip.MustParseAddr("255.255.255.255")
	v4Compatible = netip.MustParsePrefix("::/96")
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	// awsServices holds the IPv6 addresses of the EC2 instance services:
	// metadata (fd00:ec2::254), DNS and NTP.
	awsServices = netip.MustParsePrefix("fd00:ec2::/32")
	// alibabaMetadata is Alibaba Cloud's instance metadata service, outside
	// link-local.
	alibabaMetadata = netip.MustParseAddr("100.100.100.200")
	// v4Translated is SIIT's IPv4-translated form, ::ffff:0:a.b.c.d (RFC
	// 2765), not to be confused with the IPv4-mapped ::ffff:a.b.c.d.
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// alwaysRefused returns why addr (unmapped, without zone) is refused by
// every policy, or "".
func alwaysRefused(addr netip.Addr) string {
	switch {
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLinkLocalUnicast():
		return "link-local (cloud metadata)"
	case addr.IsMulticast():
		return "multicast"
	case addr == broadcast:
		return "broadcast"
	case thisNetwork.Contains(addr):
		return `in "this network" 0.0.0.0/8`
	case awsServices.Contains(addr):
		return "an EC2 instance service address (metadata)"
	case addr == alibabaMetadata:
		return "a cloud metadata address"
	}
	if addr.Is6() {
		for _, v4 := range embeddedIPv4(addr) {
			if v4.IsLinkLocalUnicast() {
				return "an IPv6 form of the link-local " + v4.String() + " (cloud metadata)"
			}
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address may carry:
// IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), the
// NAT64 well-known prefix (RFC 6052), the
// NAT64 local-use prefix (RFC 8215) at every prefix length it allows, and
// 6to4 (RFC 3056).
func embeddedIPv4(addr netip.Addr) []netip.Addr {
	b := addr.As16()
	switch {
	case v4Compatible.Contains(addr), nat64.Contains(addr), v4Translated.Contains(addr):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	case nat64Local.Contains(addr):
		// RFC 6052 section 2.2: bits 64-71 are skipped.
		return []netip.Addr{
			netip.AddrFrom4([4]byte{b[6], b[7], b[9], b[10]}),   // /48
			netip.AddrFrom4([4]byte{b[7], b[9], b[10], b[11]}),  // /56
			netip.AddrFrom4([4]byte{b[9], b[10], b[11], b[12]}), // /64
			netip.AddrFrom4([4]byte(b[12:16])),                  // /96
		}
	case sixToFour.Contains(addr):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	}
	return nil
}

// Control is a [net.Dialer] Control function: the dialer calls it with
// each address it is about to connect to, after resolving the name, so
// the check applies to the address actually used. It refuses an address
// it cannot parse, such as a Unix socket path.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q", ErrAlwaysRefused, network, address)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a copy of base (or a zero dialer if base is nil) whose
// connections are checked by the policy; a Control function base already
// has runs after the check.
func (p Policy) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{}
	if base != nil {
		*d = *base
	}
	next, nextContext := d.Control, d.ControlContext
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := p.Control(network, address, c); err != nil {
			return err
		}
		if nextContext != nil {
			return nextContext(ctx, network, address, c)
		}
		if next != nil {
			return next(network, address, c)
		}
		return nil
	}
	return d
}

// DialContext connects like [net.Dialer.DialContext] on a TCP or UDP
// network, checking every address attempted. Other networks (unix, ip) are
// refused.
func (p Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("%w: network %q", ErrAlwaysRefused, network)
	}
	return p.Dialer(nil).DialContext(ctx, network, address)
}
