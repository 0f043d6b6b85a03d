package eventstore

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want StreamName
		ok   bool
	}{
		{"bot-org1_bot1", StreamName{"bot", "org1", "bot1"}, true},
		{"kb-org.a:b_x", StreamName{"kb", "org.a:b", "x"}, true},
		// The org ends at the first underscore; the entity may hold more.
		{"bot-org1_a_b", StreamName{"bot", "org1", "a_b"}, true},
		// The category ends at the first dash; the org may hold dashes.
		{"bot-org-1_x", StreamName{"bot", "org-1", "x"}, true},
		{"bot-org1_x-y", StreamName{"bot", "org1", "x-y"}, true},
		{"", StreamName{}, false},
		{"bot", StreamName{}, false},
		{"bot-org1", StreamName{}, false},
		{"-org1_x", StreamName{}, false},
		{"bot-_x", StreamName{}, false},
		{"bot-org1_", StreamName{}, false},
		{"bot-org 1_x", StreamName{}, false},
		{"bot-org1_x/y", StreamName{}, false},
		{"bot-org1_é", StreamName{}, false},
		{"bot-" + strings.Repeat("o", 129) + "_x", StreamName{}, false},
		{"bot-" + strings.Repeat("o", 128) + "_x", StreamName{"bot", strings.Repeat("o", 128), "x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStreamName(tt.name)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidStream) {
					t.Fatalf("ParseStreamName(%q) = %+v, %v; want ErrInvalidStream", tt.name, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStreamName(%q): %v", tt.name, err)
			}
			if got != tt.want {
				t.Fatalf("ParseStreamName(%q) = %+v, want %+v", tt.name, got, tt.want)
			}
			if got.String() != tt.name {
				t.Fatalf("String() = %q, want %q", got.String(), tt.name)
			}
		})
	}
}

func TestNewStreamName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		category, org, entity string
		ok                    bool
	}{
		{"bot", "org1", "b1", true},
		{"bot", "org-1", "b_1-x", true},
		{"bo-t", "org1", "b1", false}, // a dash would move the category boundary
		{"bo_t", "org1", "b1", false},
		{"bot", "org_1", "b1", false}, // an underscore would move the org boundary
		{"", "org1", "b1", false},
		{"bot", "", "b1", false},
		{"bot", "org1", "", false},
	}
	for _, tt := range tests {
		s, err := NewStreamName(tt.category, tt.org, tt.entity)
		if tt.ok != (err == nil) {
			t.Errorf("NewStreamName(%q, %q, %q) error = %v, want ok=%v", tt.category, tt.org, tt.entity, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidStream) {
				t.Errorf("NewStreamName(%q, %q, %q) error = %v, want ErrInvalidStream", tt.category, tt.org, tt.entity, err)
			}
			if s.Validate() == nil {
				t.Errorf("Validate accepted %+v that NewStreamName refused", s)
			}
			continue
		}
		if !strings.HasPrefix(s.String(), OrgPrefix(tt.category, tt.org)) {
			t.Errorf("%q does not start with OrgPrefix %q", s, OrgPrefix(tt.category, tt.org))
		}
	}
}

func TestMustStreamNamePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("MustStreamName accepted an invalid name")
		}
	}()
	MustStreamName("bot", "", "x")
}

// FuzzParseStreamName checks that parsing never panics, that an accepted
// name prints back to itself, and that every name NewStreamName accepts
// parses back to the same parts.
func FuzzParseStreamName(f *testing.F) {
	for _, seed := range []struct{ name, category, org, entity string }{
		{"bot-org1_bot1", "bot", "org1", "bot1"},
		{"bot-org-1_a_b", "kb", "org-1", "a_b-c"},
		{"-_", "", "", ""},
		{"a-b_c", "a", "b", "c"},
		{"x-y", "x-y", "z_w", "v"},
		{"bot-org1_é", "é", "org", "ü"},
	} {
		f.Add(seed.name, seed.category, seed.org, seed.entity)
	}
	f.Fuzz(func(t *testing.T, name, category, org, entity string) {
		s, err := ParseStreamName(name)
		if err == nil {
			if s.String() != name {
				t.Fatalf("ParseStreamName(%q).String() = %q", name, s.String())
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("ParseStreamName(%q) accepted %+v that Validate refuses: %v", name, s, err)
			}
		} else if !errors.Is(err, ErrInvalidStream) {
			t.Fatalf("ParseStreamName(%q) error %v is not ErrInvalidStream", name, err)
		}

		built, err := NewStreamName(category, org, entity)
		if err != nil {
			return
		}
		back, err := ParseStreamName(built.String())
		if err != nil {
			t.Fatalf("ParseStreamName(%q) refused a name NewStreamName built: %v", built, err)
		}
		if back != built {
			t.Fatalf("round trip of %+v gave %+v", built, back)
		}
	})
}
