package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/palisadehq/palisade/eventstore"
)

// Digest is one link of a chain: a SHA-256 sum.
type Digest [sha256.Size]byte

// String is the digest in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText writes the digest as hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a digest written by MarshalText.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*sha256.Size {
		return fmt.Errorf("chain: digest has %d hex digits, want %d", len(b), 2*sha256.Size)
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// hashDomain starts every encoding, so that a chain hash can never be
// mistaken for the hash of anything else, and a change of the encoding is a
// new version rather than a silent difference.
const hashDomain = "palisade audit chain v1"

// Hasher computes chain hashes, reusing its buffers; it is not safe for
// concurrent use.
type Hasher struct {
	h   hash.Hash
	buf []byte
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Hash returns the hash of env as the seq-th event of its organization,
// after prev (the zero Digest for the first event).
func (x *Hasher) Hash(prev Digest, seq uint64, env eventstore.Envelope) (Digest, error) {
	b := x.buf[:0]
	b = appendField(b, []byte(hashDomain))
	b = appendField(b, prev[:])
	b = binary.BigEndian.AppendUint64(b, seq)
	b = appendField(b, env.ID[:])
	b = appendField(b, []byte(env.Type))
	// The stream's name, as Stream.String spells it, without building it.
	st := env.Stream
	b = binary.BigEndian.AppendUint64(b, uint64(len(st.Category)+1+len(st.OrgID)+1+len(st.EntityID)))
	b = append(append(append(append(append(b, st.Category...), '-'), st.OrgID...), '_'), st.EntityID...)
	b = binary.BigEndian.AppendUint64(b, env.StreamVersion)
	b = appendField(b, env.Data)
	// The metadata's JSON is what json.Marshal writes
	// (eventstore.AppendMetadataJSON is held to that byte for byte),
	// written in place after a length patched in afterwards.
	meta := env.Metadata
	meta.OccurredAt = meta.OccurredAt.UTC()
	at := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b, err := eventstore.AppendMetadataJSON(b, meta)
	x.buf = b
	if err != nil {
		return Digest{}, fmt.Errorf("chain: encode metadata of event %s: %w", env.ID, err)
	}
	binary.BigEndian.PutUint64(b[at:], uint64(len(b)-at-8))
	x.h.Reset()
	x.h.Write(b)
	var d Digest
	x.h.Sum(d[:0])
	return d, nil
}

// Hash is Hasher.Hash with a fresh Hasher.
func Hash(prev Digest, seq uint64, env eventstore.Envelope) (Digest, error) {
	return NewHasher().Hash(prev, seq, env)
}

// appendField appends b prefixed with its length, so that no two
// different sequences of fields encode to the same bytes.
func appendField(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(b)))
	return append(dst, b...)
}
