package chunk_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/knowledge/chunk"
)

// TestManySubheadingsUnderALongHeading: a 1 MiB document of one 16 KiB
// heading and subheadings under it, one per line. Each chunk's heading
// path holds the long title cut to 256 bytes, and splitting it allocates
// in proportion to the text, not to the long title once per subheading
// (that shape held 3.6 GB of paths when each heading kept its own).
func TestManySubheadingsUnderALongHeading(t *testing.T) {
	const size = 1 << 20
	var b strings.Builder
	b.WriteString("# " + strings.Repeat("x", 16<<10) + "\n")
	for b.Len() < size-5 {
		b.WriteString("## a\n")
	}
	text := b.String()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	chunks := chunk.Split(text, chunk.Options{})
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if allocated > 256<<20 {
		t.Errorf("splitting a %d-byte document allocated %d MiB", len(text), allocated>>20)
	}
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	long := strings.Repeat("x", 256)
	for _, c := range chunks {
		if c.Heading != long && c.Heading != long+" > a" {
			t.Fatalf("chunk %d's heading is %d bytes (%.40q…), want the long title cut to 256 bytes, and the subheading", c.Ordinal, len(c.Heading), c.Heading)
		}
	}
	t.Logf("%d chunks, %d MiB allocated", len(chunks), allocated>>20)
}
