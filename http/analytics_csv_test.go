package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/projections"
)

func TestSpreadsheetSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"north", "north"},
		{"", ""},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"-12.50", "-12.50"},
		{"+7", "+7"},
		{"a=b", "a=b"},
	}
	for _, tt := range tests {
		if got := spreadsheetSafe(tt.in); got != tt.want {
			t.Errorf("spreadsheetSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResultCSVDefusesFormulas(t *testing.T) {
	res := projections.AnalyticsResult{
		Columns: []analytics.Column{{Name: "=region"}, {Name: "amount"}},
		Rows:    []json.RawMessage{json.RawMessage(`["=1+1", -12.5]`), json.RawMessage(`[null, "-3.00"]`)},
	}
	body, err := resultCSV(res)
	if err != nil {
		t.Fatal(err)
	}
	want := "'=region,amount\n'=1+1,-12.5\n,-3.00\n"
	if string(body) != want {
		t.Fatalf("csv = %q, want %q", body, want)
	}
	if strings.Contains(string(body), "\n=") {
		t.Fatal("a line starts with a formula")
	}
}
