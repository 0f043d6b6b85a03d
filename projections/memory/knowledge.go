package memory

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/projections"
)

// Knowledge is the memory adapter of projections.KnowledgeModel.
type Knowledge struct {
	bases *orgTable[projections.KnowledgeBase]
	// docs is keyed by document id across the organization's bases.
	docs *orgTable[projections.Document]
}

// NewKnowledge returns an empty knowledge read model.
func NewKnowledge() *Knowledge {
	return &Knowledge{bases: newOrgTable(cloneKB), docs: newOrgTable[projections.Document](nil)}
}

func cloneKB(kb projections.KnowledgeBase) projections.KnowledgeBase {
	grants := make([]knowledge.Grant, len(kb.Grants))
	for i, g := range kb.Grants {
		grants[i] = knowledge.Grant{Subject: g.Subject, Permissions: slices.Clone(g.Permissions)}
	}
	kb.Grants = grants
	return kb
}

func (k *Knowledge) KnowledgeBase(_ context.Context, scope access.Scope, id string) (projections.KnowledgeBase, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.KnowledgeBase{}, err
	}
	if kb, ok := k.bases.get(org, id); ok {
		return kb, nil
	}
	return projections.KnowledgeBase{}, fmt.Errorf("knowledge base: %w", projections.ErrNotFound)
}

func (k *Knowledge) KnowledgeBases(_ context.Context, scope access.Scope, page projections.Page) ([]projections.KnowledgeBase, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return k.bases.page(org, page, nil), nil
}

func (k *Knowledge) Document(ctx context.Context, scope access.Scope, kbID, docID string) (projections.Document, error) {
	doc, err := k.DocumentByID(ctx, scope, docID)
	if err != nil || doc.KnowledgeBaseID != kbID {
		return projections.Document{}, fmt.Errorf("document: %w", projections.ErrNotFound)
	}
	return doc, nil
}

func (k *Knowledge) DocumentByID(_ context.Context, scope access.Scope, docID string) (projections.Document, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Document{}, err
	}
	if doc, ok := k.docs.get(org, docID); ok {
		return doc, nil
	}
	return projections.Document{}, fmt.Errorf("document: %w", projections.ErrNotFound)
}

func (k *Knowledge) Documents(_ context.Context, scope access.Scope, kbID string, page projections.Page) ([]projections.Document, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	inBase := func(doc projections.Document) bool { return doc.KnowledgeBaseID == kbID }
	return k.docs.page(org, page, inBase), nil
}

func (k *Knowledge) PutKnowledgeBase(_ context.Context, scope access.Scope, kb projections.KnowledgeBase) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	k.bases.put(org, kb.ID, kb)
	return nil
}

func (k *Knowledge) PutDocument(_ context.Context, scope access.Scope, doc projections.Document) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	k.docs.put(org, doc.ID, doc)
	return nil
}

func (k *Knowledge) DeleteDocument(_ context.Context, scope access.Scope, _, docID string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	k.docs.delete(org, docID)
	return nil
}

// Chunks is the memory adapter of projections.ChunkModel: each
// organization's chunks, searched by an exact scan restricted to the
// requested knowledge bases.
type Chunks struct {
	mu sync.RWMutex
	// byOrg maps org → document id → chunks.
	byOrg map[string]map[string][]projections.StoredChunk
}

// NewChunks returns an empty chunk read model.
func NewChunks() *Chunks { return &Chunks{byOrg: map[string]map[string][]projections.StoredChunk{}} }

func (c *Chunks) ReplaceChunks(_ context.Context, scope access.Scope, docID string, chunks []projections.StoredChunk) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	docs := c.byOrg[org]
	if docs == nil {
		docs = map[string][]projections.StoredChunk{}
		c.byOrg[org] = docs
	}
	docs[docID] = slices.Clone(chunks)
	return nil
}

func (c *Chunks) DeleteChunks(_ context.Context, scope access.Scope, docID string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byOrg[org], docID)
	return nil
}

// rrfK is the constant of reciprocal rank fusion: score = Σ 1/(rrfK+rank).
const rrfK = 60

// Search ranks the org's chunks of the requested bases by cosine
// similarity and by keyword overlap, and fuses both rankings.
func (c *Chunks) Search(_ context.Context, scope access.Scope, q projections.ChunkQuery) ([]projections.ChunkHit, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	if len(q.KnowledgeBaseIDs) == 0 || q.K <= 0 {
		return []projections.ChunkHit{}, nil
	}
	allowed := map[string]bool{}
	for _, id := range q.KnowledgeBaseIDs {
		allowed[id] = true
	}
	terms := Terms(q.Text)
	type scored struct {
		chunk   projections.StoredChunk
		cos     float64
		keyword float64
	}
	// A document's chunks are replaced whole, never changed in place: the
	// slices taken under the lock stay valid, so the scoring runs without
	// it and never holds up writers of other organizations.
	c.mu.RLock()
	docs := make([][]projections.StoredChunk, 0, len(c.byOrg[org]))
	for _, chunks := range c.byOrg[org] {
		docs = append(docs, chunks)
	}
	c.mu.RUnlock()
	var candidates []scored
	for _, chunks := range docs {
		for _, ch := range chunks {
			if !allowed[ch.KnowledgeBaseID] {
				continue
			}
			candidates = append(candidates, scored{chunk: ch, cos: cosine(q.Vector, ch.Embedding), keyword: keywordScore(terms, ch.Text)})
		}
	}

	fused := map[string]float64{}
	// A chunk without a vector (missing from the embedding store when it
	// was recorded) has no vector rank; only its keywords can find it.
	byVector := slices.DeleteFunc(slices.Clone(candidates), func(s scored) bool { return s.chunk.Embedding == nil })
	sort.SliceStable(byVector, func(i, j int) bool {
		if byVector[i].cos != byVector[j].cos {
			return byVector[i].cos > byVector[j].cos
		}
		return byVector[i].chunk.ID < byVector[j].chunk.ID
	})
	for rank, s := range byVector {
		fused[s.chunk.ID] += 1.0 / float64(rrfK+rank+1)
	}
	byKeyword := slices.Clone(candidates)
	sort.SliceStable(byKeyword, func(i, j int) bool {
		if byKeyword[i].keyword != byKeyword[j].keyword {
			return byKeyword[i].keyword > byKeyword[j].keyword
		}
		return byKeyword[i].chunk.ID < byKeyword[j].chunk.ID
	})
	for rank, s := range byKeyword {
		if s.keyword == 0 {
			break // chunks without a query term get no keyword rank
		}
		fused[s.chunk.ID] += 1.0 / float64(rrfK+rank+1)
	}
	candidates = slices.DeleteFunc(candidates, func(s scored) bool { _, ranked := fused[s.chunk.ID]; return !ranked })
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := fused[candidates[i].chunk.ID], fused[candidates[j].chunk.ID]
		if a != b {
			return a > b
		}
		return candidates[i].chunk.ID < candidates[j].chunk.ID
	})
	out := make([]projections.ChunkHit, 0, min(q.K, len(candidates)))
	for _, s := range candidates[:min(q.K, len(candidates))] {
		out = append(out, projections.ChunkHit{
			ChunkID: s.chunk.ID, DocumentID: s.chunk.DocumentID, KnowledgeBaseID: s.chunk.KnowledgeBaseID,
			Ordinal: s.chunk.Ordinal, Heading: s.chunk.Heading, Text: s.chunk.Text, Score: fused[s.chunk.ID],
		})
	}
	return out, nil
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// Terms splits text into lowercase words, as keyword ranking sees them.
func Terms(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// keywordScore counts query-term occurrences with sublinear weighting.
func keywordScore(terms []string, text string) float64 {
	if len(terms) == 0 {
		return 0
	}
	counts := map[string]int{}
	for _, w := range Terms(text) {
		counts[w]++
	}
	var score float64
	for _, t := range terms {
		if n := counts[t]; n > 0 {
			score += 1 + math.Log(float64(n))
		}
	}
	return score
}
