package sealing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// digestKeyLabel derives a data key's digest key; it separates that use of
// the data key from sealing, key ids and handles.
const digestKeyLabel = "palisade content digest key v1\x00"

// DigestKey keys the digests of an organization's content: the hashes that
// events record, and the audit views show, in clear beside sealed content
// (a document's content hash, a chunk's hash, a message's, a result's).
// A plain SHA-256 of short or guessable content lets anyone holding a copy
// of the log confirm a guess, also after the content itself was shredded;
// a digest under this key cannot be computed, or checked against a guess,
// without the key, which goes with the organization's data key. It is
// derived from a data key ([DataKey.DigestKey]); formatting it shows
// nothing of it.
type DigestKey struct {
	key   [sha256.Size]byte
	valid bool
	// mac is the HMAC keyed with key and never written: each digest
	// clones it, which costs less than keying a new one. Cloning only
	// reads it, so one serves concurrent digests.
	mac hash.Cloner
}

// DigestKey derives the key of content digests from k, under a label of
// its own.
func (k DataKey) DigestKey() DigestKey {
	if !k.valid {
		return DigestKey{}
	}
	mac := hmac.New(sha256.New, k.key[:])
	mac.Write([]byte(digestKeyLabel))
	d := DigestKey{valid: true}
	mac.Sum(d.key[:0])
	if c, ok := hmac.New(sha256.New, d.key[:]).(hash.Cloner); ok {
		d.mac = c
	}
	return d
}

// IsZero reports whether d is the zero value, which is not a usable key.
func (d DigestKey) IsZero() bool { return !d.valid }

// Digest returns the keyed form of a content hash as text (a SHA-256 in
// hex, as events record it): the hex HMAC-SHA-256 of sum under d, 64
// digits like the hash it replaces. Equal content gives equal digests
// within one organization, so records of the same content still match;
// across organizations they differ. The empty string stays empty (it
// names no content).
func (d DigestKey) Digest(sum string) string {
	if sum == "" {
		return ""
	}
	var out [2 * sha256.Size]byte
	return string(d.AppendDigest(out[:0], sum))
}

// AppendDigest appends [DigestKey.Digest] of sum (non-empty) to dst.
func (d DigestKey) AppendDigest(dst []byte, sum string) []byte {
	var mac hash.Hash
	if d.mac != nil {
		if c, err := d.mac.Clone(); err == nil {
			mac = c
		}
	}
	if mac == nil {
		mac = hmac.New(sha256.New, d.key[:])
	}
	mac.Write([]byte(sum))
	var out [sha256.Size]byte
	return hex.AppendEncode(dst, mac.Sum(out[:0]))
}

// ContentDigest returns the digest of content itself: Digest of the hex
// SHA-256 of content, so it equals the keyed form of that recorded hash.
func (d DigestKey) ContentDigest(content []byte) string {
	sum := sha256.Sum256(content)
	return d.Digest(hex.EncodeToString(sum[:]))
}

// String shows nothing of the key.
func (d DigestKey) String() string { return "sealing.DigestKey{…}" }

// GoString shows nothing of the key.
func (d DigestKey) GoString() string { return d.String() }

// Format makes every fmt verb print [DigestKey.String].
func (d DigestKey) Format(f fmt.State, _ rune) { io.WriteString(f, d.String()) }
