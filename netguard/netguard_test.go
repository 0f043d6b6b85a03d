package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // Policy.String of the result
		wantErr []string
	}{
		{in: "", want: ""},
		{in: "  ", want: ""},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: " 10.0.0.0/8 , fd00::/8,127.0.0.1/32", want: "10.0.0.0/8,fd00::/8,127.0.0.1/32"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "10.0.0.0/8,", wantErr: []string{`entry 2 "": empty`}},
		{in: "10.0.0.1", wantErr: []string{`entry 1 "10.0.0.1": not a CIDR`}},
		{in: "10.1.2.3/8", wantErr: []string{`host bits set; the network is 10.0.0.0/8`}},
		{in: "fe80::1%eth0/64", wantErr: []string{`entry 1 "fe80::1%eth0/64"`}},
		{in: "::ffff:0:0/96", want: "0.0.0.0/0"},
		{in: "::ffff:0:0/80", wantErr: []string{"host bits set"}},
		{in: "bogus, 10.0.0.0/33 ,192.168.0.0/16", wantErr: []string{`entry 1 "bogus"`, `entry 2 "10.0.0.0/33"`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			p, err := ParseAllowed(tt.in)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseAllowed = %v, want an error", p)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllowed: %v", err)
			}
			if p.String() != tt.want {
				t.Errorf("policy = %q, want %q", p, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	everything := Policy{}
	private, err := ParseAllowed("10.0.0.0/8,fd00::/8,169.254.0.0/16,fe80::/10,::/0,0.0.0.0/0")
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := ParseAllowed("10.0.0.0/8,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		// wants per policy: nil, ErrAlwaysRefused or ErrNotAllowed.
		everything, private, narrow error
	}{
		// Link-local and metadata, refused by every policy, even one that lists them.
		{"169.254.169.254", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"169.254.0.1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"::ffff:169.254.169.254", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"::169.254.169.254", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"64:ff9b::169.254.169.254", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"64:ff9b:1:a9fe:a9:fe00::", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused}, // local-use NAT64, /48
		{"64:ff9b:1::a9fe:a9fe", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},     // local-use NAT64, /96
		{"2002:a9fe:a9fe::1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},        // 6to4
		{"fe80::1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"fe80::1%eth0", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"febf::1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"fd00:ec2::254", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"100.100.100.200", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},    // Alibaba Cloud metadata
		{"::ffff:0:a9fe:a9fe", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused}, // IPv4-translated 169.254.169.254
		{"0.0.0.0", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"0.1.2.3", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"::", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"::ffff:0.0.0.0", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"224.0.0.1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"ff02::1", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		{"255.255.255.255", ErrAlwaysRefused, ErrAlwaysRefused, ErrAlwaysRefused},
		// Ordinary addresses: the allow-list decides.
		{"10.1.2.3", nil, nil, nil},
		{"::ffff:10.1.2.3", nil, nil, nil},
		// Loopback: refused unless an allow-list lists it.
		{"127.0.0.1", ErrNotAllowed, nil, ErrNotAllowed},
		{"127.1.2.3", ErrNotAllowed, nil, ErrNotAllowed},
		{"::1", ErrNotAllowed, nil, ErrNotAllowed},
		{"::ffff:127.0.0.1", ErrNotAllowed, nil, ErrNotAllowed},
		{"8.8.8.8", nil, nil, ErrNotAllowed},
		{"2001:db8::1", nil, nil, nil},
		{"fd00:ec3::1", nil, nil, ErrNotAllowed},
		{"64:ff9b::8.8.8.8", nil, nil, ErrNotAllowed},
		{"::8.8.8.8", nil, nil, ErrNotAllowed},
		{"169.255.0.1", nil, nil, ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			addr := netip.MustParseAddr(tt.addr)
			for _, c := range []struct {
				name   string
				policy Policy
				want   error
			}{{"everything", everything, tt.everything}, {"private", private, tt.private}, {"narrow", narrow, tt.narrow}} {
				err := c.policy.Check(addr)
				if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
					t.Errorf("%s policy: Check(%s) = %v, want %v", c.name, addr, err, c.want)
				}
			}
		})
	}
	if err := everything.Check(netip.Addr{}); !errors.Is(err, ErrAlwaysRefused) {
		t.Errorf("Check(invalid) = %v, want ErrAlwaysRefused", err)
	}
}

// listen starts a TCP listener on 127.0.0.1 that accepts and closes
// connections, and returns its port.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestDialChecksResolvedAddress dials "localhost", a name, and checks that
// the policy judges the address it resolves to.
func TestDialChecksResolvedAddress(t *testing.T) {
	t.Parallel()
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost")
	if err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Fatalf("localhost must resolve to a loopback IPv4 address for this test: %v %v", addrs, err)
	}
	port := listen(t)
	target := net.JoinHostPort("localhost", port)
	tests := []struct {
		allowed string
		want    error
	}{
		{allowed: "10.0.0.0/8,::1/128", want: ErrNotAllowed},
		{allowed: "127.0.0.0/8", want: nil},
		{allowed: "", want: ErrNotAllowed}, // loopback, unless listed
	}
	for _, tt := range tests {
		t.Run(tt.allowed, func(t *testing.T) {
			t.Parallel()
			p, err := ParseAllowed(tt.allowed)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, dial := range []struct {
				name string
				fn   func() (net.Conn, error)
			}{
				{"DialContext", func() (net.Conn, error) { return p.DialContext(ctx, "tcp4", target) }},
				{"Dialer", func() (net.Conn, error) {
					return p.Dialer(&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", target)
				}},
			} {
				conn, err := dial.fn()
				if conn != nil {
					conn.Close()
				}
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("%s %s with allowed %q: err = %v, want %v", dial.name, target, tt.allowed, err, tt.want)
				}
			}
		})
	}
}

func TestDialRefusesWithoutConnecting(t *testing.T) {
	t.Parallel()
	p := Policy{}
	tests := []struct {
		network, address string
	}{
		{"tcp", "169.254.169.254:80"},
		{"tcp", "[::ffff:169.254.169.254]:80"},
		{"tcp", "[fd00:ec2::254]:80"},
		{"tcp", "[fe80::1%lo]:80"},
		{"tcp", "0.0.0.0:80"},
		{"udp", "169.254.169.254:53"},
		{"unix", "/var/run/docker.sock"},
		{"ip4:icmp", "169.254.169.254"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			conn, err := p.DialContext(ctx, tt.network, tt.address)
			if conn != nil {
				conn.Close()
			}
			if !errors.Is(err, ErrAlwaysRefused) {
				t.Fatalf("DialContext(%s, %s) err = %v, want ErrAlwaysRefused", tt.network, tt.address, err)
			}
		})
	}
}

func TestDialerKeepsBaseControl(t *testing.T) {
	t.Parallel()
	port := listen(t)
	called := make(chan string, 4)
	base := &net.Dialer{ControlContext: nil}
	base.Control = func(network, address string, _ syscall.RawConn) error {
		called <- address
		return nil
	}
	d := Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Dialer(base)
	conn, err := d.Dial("tcp4", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	conn.Close()
	select {
	case a := <-called:
		if a != "127.0.0.1:"+port {
			t.Errorf("base Control saw %q", a)
		}
	default:
		t.Error("the base dialer's Control was not called")
	}
	if _, err := d.Dial("tcp4", "169.254.169.254:80"); !errors.Is(err, ErrAlwaysRefused) {
		t.Errorf("Dial metadata: %v, want ErrAlwaysRefused", err)
	}
	if len(called) != 0 {
		t.Error("the base Control ran for a refused address")
	}
}

func TestControlRefusesUnparsable(t *testing.T) {
	t.Parallel()
	for _, address := range []string{"", "localhost:80", "/tmp/sock", "10.0.0.1"} {
		if err := (Policy{}).Control("tcp", address, nil); !errors.Is(err, ErrAlwaysRefused) {
			t.Errorf("Control(%q) = %v, want ErrAlwaysRefused", address, err)
		}
	}
}

// TestOwnServicesAreRefusedUnlessListed: the deployment's own service
// addresses are refused by the default policy, and allowed when an
// allow-list names their network (the operator's explicit choice).
func TestOwnServicesAreRefusedUnlessListed(t *testing.T) {
	t.Parallel()
	own := []netip.Addr{netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("fd00::9")}
	byDefault := Policy{Own: own}
	listed := Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}, Own: own}
	for _, tt := range []struct {
		addr   string
		policy Policy
		want   error
	}{
		{"10.9.9.9", byDefault, ErrNotAllowed},
		{"::ffff:10.9.9.9", byDefault, ErrNotAllowed},
		{"fd00::9", byDefault, ErrNotAllowed},
		{"10.9.9.8", byDefault, nil},
		{"10.9.9.9", listed, nil},
		{"fd00::9", listed, nil},
	} {
		err := tt.policy.Check(netip.MustParseAddr(tt.addr))
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Check(%s) with allowed %q = %v, want %v", tt.addr, tt.policy, err, tt.want)
		}
	}
}
