package kafka

import (
	"errors"

	"github.com/IBM/sarama"
)

// murmur2Partitioner puts a message on partition murmur2(key) mod n, as the
// Java client's default partitioner (and librdkafka's murmur2 and
// franz-go's default) do, so that a downstream application keying its own
// topics by org id in any of them is co-partitioned with ours. Sarama's
// own hash partitioners use FNV-1a, which matches none of them.
type murmur2Partitioner struct{}

func newMurmur2Partitioner(string) sarama.Partitioner { return murmur2Partitioner{} }

func (murmur2Partitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if msg.Key == nil {
		return 0, errors.New("kafka: message without a key")
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return 0, err
	}
	return int32(murmur2(key)&0x7fffffff) % numPartitions, nil
}

func (murmur2Partitioner) RequiresConsistency() bool { return true }

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c), as in
// org.apache.kafka.common.utils.Utils.murmur2.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
