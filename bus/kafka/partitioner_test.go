package kafka

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMurmur2MatchesKafka holds murmur2 to the vectors of Kafka's own
// UtilsTest.testMurmur2.
func TestMurmur2MatchesKafka(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := int32(murmur2([]byte(in))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestPartitionerMatchesOtherClients: an org id lands on the partition
// franz-go's default partitioner (Kafka's, murmur2) picks for it.
func TestPartitionerMatchesOtherClients(t *testing.T) {
	t.Parallel()
	reference := kgo.StickyKeyPartitioner(nil).ForTopic("palisade.bot")
	ours := newMurmur2Partitioner("palisade.bot")
	for i := range 2000 {
		key := fmt.Sprintf("0198c0de-%04x-7000-8000-%012x", i%7, i)
		for _, n := range []int32{1, 3, 4, 12, 50} {
			got, err := ours.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := reference.Partition(&kgo.Record{Key: []byte(key)}, int(n)); int(got) != want {
				t.Fatalf("key %q over %d partitions: partition %d, franz-go picks %d", key, n, got, want)
			}
		}
	}
	if _, err := ours.Partition(&sarama.ProducerMessage{}, 4); err == nil {
		t.Fatal("a message without a key was given a partition")
	}
}
