package embed

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Hashing is the offline embedder: feature hashing ("the hashing trick") of
// words, word pairs and character trigrams into a fixed number of signed
// buckets, with sublinear term frequency and L2 normalisation. Texts that
// share words, word stems or spelling fragments get a higher cosine
// similarity; it knows no synonyms. It is deterministic across processes,
// machines and Go versions: the hash is FNV-1a (the function of hash/fnv's
// New64a, computed inline to avoid allocations) with no seed, sums run in a
// fixed order, and only exactly rounded operations are used.
type Hashing struct {
	dims    int
	model   string
	scratch sync.Pool // *hashingScratch
}

type hashingScratch struct {
	token    []byte
	grams    []int // rune start offsets of the marked token
	features []uint64
	acc      []float64
}

// NewHashing returns a hashing embedder producing vectors of dims
// components; dims <= 0 means [DefaultDimensions].
func NewHashing(dims int) *Hashing {
	if dims <= 0 {
		dims = DefaultDimensions
	}
	h := &Hashing{dims: dims, model: fmt.Sprintf("palisade-hashing-v1-%d", dims)}
	h.scratch.New = func() any {
		return &hashingScratch{acc: make([]float64, dims)}
	}
	return h
}

// Model is "palisade-hashing-v1-{dims}". The version changes whenever the
// features or weights change, since vectors of two versions do not compare.
func (h *Hashing) Model() string { return h.model }

// Dimensions is the vector size given to NewHashing.
func (h *Hashing) Dimensions() int { return h.dims }

// Embed hashes each text. A text with no letters or digits gets a fixed
// unit vector of its own rather than a zero vector, which has no direction.
func (h *Hashing) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	s := h.scratch.Get().(*hashingScratch)
	defer h.scratch.Put(s)
	for i, text := range texts {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = h.embed(text, s)
	}
	return out, nil
}

// Feature classes, kept in the top two bits of a feature key so that the
// weight is known after sorting. Their byte values also namespace the hash,
// so the word "abc" and the trigram "abc" land in different buckets.
const (
	classWord    = 1
	classBigram  = 2
	classTrigram = 3
	classEmpty   = 0

	keyMask = 1<<62 - 1
)

// classWeight is the weight of one occurrence of a feature of each class.
// Words carry the meaning; trigrams make "password" and "passwords" or a
// typo close; word pairs reward phrases.
var classWeight = [4]float64{classEmpty: 1, classWord: 1, classBigram: 0.6, classTrigram: 0.35}

// Markers around a token for its trigrams, so prefixes and suffixes are
// features of their own. Control bytes never occur in a token.
const (
	tokenStart = '\x02'
	tokenEnd   = '\x03'
	// maxWordRunes bounds a word feature; longer runs of letters (scripts
	// written without spaces, base64) are still covered by their trigrams.
	maxWordRunes = 40
)

func (h *Hashing) embed(text string, s *hashingScratch) []float32 {
	s.features = s.features[:0]
	var prevWord uint64
	havePrev := false
	for pos := 0; pos < len(text); {
		// Find the next token: a run of letters and digits, lowercased.
		s.token = append(s.token[:0], tokenStart)
		runes := 0
		for pos < len(text) {
			r, size := utf8.DecodeRuneInString(text[pos:])
			if isTokenRune(r) {
				break
			}
			pos += size
		}
		for pos < len(text) {
			r, size := utf8.DecodeRuneInString(text[pos:])
			if !isTokenRune(r) {
				break
			}
			pos += size
			s.token = utf8.AppendRune(s.token, unicode.ToLower(r))
			runes++
		}
		if runes == 0 {
			break
		}
		word := stem(s.token[1:])
		s.token = append(s.token[:1+len(word)], tokenEnd)
		if isStopWord(word) {
			continue
		}
		if runes <= maxWordRunes {
			w := featureKey(classWord, fnv1a(fnvOffset64^classWord, word))
			s.features = append(s.features, w)
			if havePrev {
				pair := fnv1aUint64(fnv1aUint64(fnvOffset64^classBigram, prevWord), w)
				s.features = append(s.features, featureKey(classBigram, pair))
			}
			prevWord, havePrev = w, true
		} else {
			havePrev = false
		}
		s.features = appendTrigrams(s.features, s.token, &s.grams)
	}
	if len(s.features) == 0 {
		s.features = append(s.features, featureKey(classEmpty, fnv1a(fnvOffset64, nil)))
	}

	// Sorting gives a fixed summation order (float addition is not
	// associative, and map order is random) and groups repeats for
	// sublinear term frequency.
	slices.Sort(s.features)
	clear(s.acc)
	for i := 0; i < len(s.features); {
		key := s.features[i]
		j := i + 1
		for j < len(s.features) && s.features[j] == key {
			j++
		}
		// Sublinear term frequency. Square root rather than 1+log: it is
		// exactly rounded on every architecture, so vectors are identical
		// bit for bit wherever the read model is rebuilt.
		weight := float64(classWeight[key>>62] * math.Sqrt(float64(j-i)))
		bucket := (key & keyMask) % uint64(h.dims)
		if key>>61&1 == 1 {
			weight = -weight
		}
		s.acc[bucket] += weight
		i = j
	}
	var sum float64
	for _, x := range s.acc {
		sum += float64(x * x) // the conversion forbids a fused multiply-add
	}
	out := make([]float32, h.dims)
	if sum == 0 {
		// Every feature cancelled out; fall back to the first bucket so the
		// result still has unit length.
		out[0] = 1
		return out
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range s.acc {
		out[i] = float32(x * inv)
	}
	return out
}

func appendTrigrams(features []uint64, marked []byte, offsets *[]int) []uint64 {
	offs := (*offsets)[:0]
	for i := range len(marked) {
		if utf8.RuneStart(marked[i]) {
			offs = append(offs, i)
		}
	}
	offs = append(offs, len(marked))
	*offsets = offs
	for i := 0; i+3 < len(offs); i++ {
		g := marked[offs[i]:offs[i+3]]
		features = append(features, featureKey(classTrigram, fnv1a(fnvOffset64^classTrigram, g)))
	}
	return features
}

func isTokenRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// featureKey mixes a hash (FNV-1a's high bits are weak for short inputs)
// and stores the class in the top two bits. Bit 61 is the sign; the bucket
// is taken modulo the dimensions.
func featureKey(class uint64, h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return class<<62 | h&keyMask
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

func fnv1aUint64(h uint64, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime64
		v >>= 8
	}
	return h
}

// stem folds a few English inflections so that "documents", "documented"
// and "documenting" share a word feature with "document". It only shortens
// ASCII words and never below three letters.
func stem(w []byte) []byte {
	for _, c := range w {
		if c >= utf8.RuneSelf {
			return w
		}
	}
	n := len(w)
	switch {
	case n > 5 && hasSuffix(w, "ies"):
		w = append(w[:n-3], 'y')
	case n > 5 && hasSuffix(w, "sses"):
		w = w[:n-2]
	case n > 5 && hasSuffix(w, "ing"):
		w = w[:n-3]
	case n > 4 && hasSuffix(w, "ed"):
		w = w[:n-2]
	case n > 3 && w[n-1] == 's' && !hasSuffix(w, "ss") && !hasSuffix(w, "us") && !hasSuffix(w, "is"):
		w = w[:n-1]
	}
	return w
}

func hasSuffix(w []byte, s string) bool {
	return len(w) >= len(s) && string(w[len(w)-len(s):]) == s
}

// isStopWord drops the most frequent English function words, which would
// otherwise make any two English texts look alike.
func isStopWord(w []byte) bool {
	if len(w) > 5 {
		return false
	}
	switch string(w) {
	case "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "for",
		"from", "has", "have", "he", "how", "i", "if", "in", "is", "it", "its",
		"my", "of", "on", "or", "our", "she", "so", "that", "the", "their",
		"them", "there", "these", "they", "this", "to", "was", "we", "were",
		"what", "when", "which", "who", "will", "with", "you", "your":
		return true
	}
	return false
}
