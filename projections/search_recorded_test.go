package projections_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// searchLog is the audit trail as the search use case sees it.
type searchLog struct {
	searches []*knowledge.KnowledgeSearched
	denials  []string
	fail     error
}

func (l *searchLog) RecordSearch(_ context.Context, _ access.Principal, _ access.Decision, s *knowledge.KnowledgeSearched) (string, uint64, error) {
	if l.fail != nil {
		return "", 0, l.fail
	}
	l.searches = append(l.searches, s)
	return "search-1", 42, nil
}

func (l *searchLog) RecordDenial(_ context.Context, _ access.Principal, _ access.Decision, resource string) {
	l.denials = append(l.denials, resource)
}

// TestSearchIsRecorded: the one search use case answers only after it
// recorded the search with the chunks it returned, refuses (and records
// the refusal) a caller without kb:read, and answers nothing when the
// record fails.
func TestSearchIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scope, err := access.EventScope("org-a")
	if err != nil {
		t.Fatal(err)
	}
	bases, chunks, embedder := memory.NewKnowledge(), memory.NewChunks(), embed.NewHashing(embed.DefaultDimensions)
	if err := bases.PutKnowledgeBase(ctx, scope, projections.KnowledgeBase{ID: "kb-1", Name: "Handbook", Grants: []knowledge.Grant{}}); err != nil {
		t.Fatal(err)
	}
	if err := bases.PutDocument(ctx, scope, projections.Document{ID: "doc-1", KnowledgeBaseID: "kb-1", Title: "Leave"}); err != nil {
		t.Fatal(err)
	}
	text := "every employee has twenty vacation days"
	vectors, err := embedder.Embed(ctx, []string{text})
	if err != nil {
		t.Fatal(err)
	}
	if err := chunks.ReplaceChunks(ctx, scope, "doc-1", []projections.StoredChunk{
		{ID: "chunk-1", KnowledgeBaseID: "kb-1", DocumentID: "doc-1", Text: text, Embedding: vectors[0]},
	}); err != nil {
		t.Fatal(err)
	}
	viewer := access.NewUser("org-a", "vera", []access.Role{access.RoleViewer}, nil)
	botsOnly := access.NewServiceAccount("org-a", "sa-1", access.NewPermissionSet(access.BotsRead), nil)

	t.Run("recorded with its chunks", func(t *testing.T) {
		t.Parallel()
		log := &searchLog{}
		q := projections.NewKnowledgeQueries(bases, chunks, embedder, log, log)
		answer, err := q.Search(ctx, viewer, projections.SearchRequest{Query: "vacation days"})
		if err != nil {
			t.Fatal(err)
		}
		if len(answer.Results) != 1 || answer.Results[0].ChunkID != "chunk-1" || answer.SearchID != "search-1" || answer.Position != 42 {
			t.Fatalf("answer = %+v", answer)
		}
		if len(log.searches) != 1 {
			t.Fatalf("%d searches recorded, want 1", len(log.searches))
		}
		s := log.searches[0]
		if s.Query != "vacation days" || s.K != projections.DefaultSearchK || !slices.Equal(s.KnowledgeBaseIDs, []string{"kb-1"}) ||
			len(s.Hits) != 1 || s.Hits[0].ChunkID != "chunk-1" || s.Hits[0].DocumentID != "doc-1" {
			t.Fatalf("recorded %+v", s)
		}
	})
	t.Run("refused without kb:read", func(t *testing.T) {
		t.Parallel()
		log := &searchLog{}
		q := projections.NewKnowledgeQueries(bases, chunks, embedder, log, log)
		if _, err := q.Search(ctx, botsOnly, projections.SearchRequest{Query: "vacation"}); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
		if len(log.searches) != 0 || len(log.denials) != 1 {
			t.Fatalf("searches %d, denials %v", len(log.searches), log.denials)
		}
	})
	t.Run("no answer without its record", func(t *testing.T) {
		t.Parallel()
		log := &searchLog{fail: errors.New("log unavailable")}
		q := projections.NewKnowledgeQueries(bases, chunks, embedder, log, log)
		answer, err := q.Search(ctx, viewer, projections.SearchRequest{Query: "vacation"})
		if err == nil || answer.Results != nil {
			t.Fatalf("answer = %+v, err = %v; want an error and no results", answer, err)
		}
	})
}
