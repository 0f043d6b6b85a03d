package llm

import (
	"strings"
	"testing"
)

func TestParseToolLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line       string
		name, args string
		ok         bool
	}{
		{`@tool send_email {"to":"a@b.c"}`, "send_email", `{"to":"a@b.c"}`, true},
		{"  \t@tool   x.y-z_1   {\"a\": 1}  \r", "x.y-z_1", `{"a": 1}`, true},
		{"@tool delete_everything", "delete_everything", "{}", true},
		{"@tool delete_everything   ", "delete_everything", "{}", true},
		{"@tool bad {not json", "bad", "{not json", true},
		{`@tool f{"glued":true}`, "f", `{"glued":true}`, true},
		{"@tool f!x", "f", "!x", true},
		{"@tool", "", "", false},
		{"@tool   ", "", "", false},
		{"@toolname {}", "", "", false},
		{"@tool {}", "", "", false},
		{"please @tool x {}", "", "", false},
		{"@TOOL x {}", "", "", false},
		{"", "", "", false},
	} {
		name, args, ok := parseToolLine(tc.line)
		if name != tc.name || args != tc.args || ok != tc.ok {
			t.Errorf("parseToolLine(%q) = %q, %q, %v; want %q, %q, %v", tc.line, name, args, ok, tc.name, tc.args, tc.ok)
		}
	}
}

// FuzzParseToolLine checks the parser's invariants on any line: it never
// panics, a recognised call has a well-formed name and one-line arguments,
// and writing a call back as a line reads as the same call.
func FuzzParseToolLine(f *testing.F) {
	for _, seed := range []string{
		`@tool send_email {"to":"a@b.c"}`,
		"@tool x",
		"\t@tool a.b-c_d   [1,2]  ",
		"@tool",
		"@toolx {}",
		"@tool \xff\xfe {}",
		"@tool x \xff",
		"text @tool x {}",
		"@tool x {\"a\":\"\\n\"}",
		"@tool\u00a0x {}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		line = strings.ReplaceAll(line, "\n", " ") // callers split lines first
		name, args, ok := parseToolLine(line)
		if !ok {
			if name != "" || args != "" {
				t.Fatalf("not a call but returned %q, %q", name, args)
			}
			return
		}
		if !strings.Contains(line, "@tool") {
			t.Fatalf("%q has no @tool but parsed as %q", line, name)
		}
		if name == "" {
			t.Fatal("empty name")
		}
		for i := 0; i < len(name); i++ {
			if !isToolNameByte(name[i]) {
				t.Fatalf("name %q has byte %q", name, name[i])
			}
		}
		if args == "" || args != strings.TrimSpace(args) {
			t.Fatalf("arguments %q are empty or padded", args)
		}
		name2, args2, ok2 := parseToolLine("@tool " + name + " " + args)
		if !ok2 || name2 != name || args2 != args {
			t.Fatalf("round trip of %q, %q gave %q, %q, %v", name, args, name2, args2, ok2)
		}
	})
}

func TestSentences(t *testing.T) {
	t.Parallel()
	got := sentences("First one. Second  one!Not split.\nThird line?   Last 3.5 percent")
	want := []string{"First one.", "Second one!Not split.", "Third line?", "Last 3.5 percent"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sentences = %q, want %q", got, want)
	}
}
