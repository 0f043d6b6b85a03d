package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// Knowledge handles the commands of knowledge bases and their documents,
// and records what searches returned.
type Knowledge struct {
	p         *Pipeline
	embedding Embedding
}

// NewKnowledge returns the knowledge handlers over p; new bases are
// embedded with emb.
func NewKnowledge(p *Pipeline, emb Embedding) *Knowledge {
	return &Knowledge{p: p, embedding: emb}
}

func kbStream(orgID, kbID string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(knowledge.KnowledgeBaseCategory, orgID, kbID)
}

func docStream(orgID, docID string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(knowledge.DocumentCategory, orgID, docID)
}

func newKB() aggregate { return &knowledge.KnowledgeBase{} }

func newDocument() aggregate { return &knowledge.Document{} }

// Embedding names the model and size every chunk of a new knowledge base
// is embedded with.
type Embedding struct {
	Model      string
	Dimensions int
}

// KnowledgeBaseCreated is what creating a knowledge base returns: the base
// as recorded.
type KnowledgeBaseCreated struct {
	Result
	KnowledgeBase *knowledge.KnowledgeBaseCreated
}

// CreateKnowledgeBase creates a knowledge base, open to every member whose
// role holds kb:read until grants restrict it, embedded with the handlers'
// embedding model.
func (k *Knowledge) CreateKnowledgeBase(ctx context.Context, who access.Principal, name, description string) (KnowledgeBaseCreated, error) {
	p, emb := k.p, k.embedding
	d, err := p.authorize(ctx, who, access.KBManage, access.OrgResource(who.OrgID), "knowledge-bases")
	if err != nil {
		return KnowledgeBaseCreated{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := kbStream(who.OrgID, id)
	if err != nil {
		return KnowledgeBaseCreated{}, err
	}
	res, err := p.create(ctx, who, d, stream, newKB, func(a aggregate) ([]domain.Event, error) {
		if a.(*knowledge.KnowledgeBase).Exists() {
			return p.existing(ctx, "knowledge base")
		}
		if err := p.admitResource(ctx, who.OrgID, ResourceKnowledgeBases); err != nil {
			return nil, err
		}
		return knowledge.CreateKnowledgeBase(id, name, description, emb.Model, emb.Dimensions)
	})
	if err != nil {
		return KnowledgeBaseCreated{}, err
	}
	e, res, err := created[*knowledge.KnowledgeBaseCreated](ctx, p, stream, res)
	if err != nil {
		return KnowledgeBaseCreated{}, err
	}
	return KnowledgeBaseCreated{Result: res, KnowledgeBase: e}, nil
}

// loadKB loads a knowledge base of the principal's organization and checks
// action on it. A base the principal may not even see answers exactly like
// one that does not exist; a visible base whose action is refused answers
// forbidden. Both refusals are recorded.
func (k *Knowledge) loadKB(ctx context.Context, who access.Principal, kbID string, action access.Permission) (*knowledge.KnowledgeBase, uint64, bool, access.Decision, error) {
	p := k.p
	stream, err := kbStream(who.OrgID, kbID)
	if err != nil {
		return nil, 0, false, access.Decision{}, fmt.Errorf("%w: knowledge base", domain.ErrNotFound)
	}
	kb := &knowledge.KnowledgeBase{}
	version, exists, err := p.load(ctx, stream, kb)
	if err != nil {
		return nil, 0, false, access.Decision{}, err
	}
	if !kb.Exists() {
		return nil, 0, false, access.Decision{}, fmt.Errorf("%w: knowledge base", domain.ErrNotFound)
	}
	res := knowledge.Resource(who.OrgID, kb.Grants())
	d := access.Decide(who, action, res)
	if d.Allowed {
		return kb, version, exists, d, nil
	}
	p.RecordDenial(ctx, who, d, "knowledge-bases/"+kbID)
	if !access.Decide(who, access.KBRead, res).Allowed && !access.Decide(who, access.KBManage, res).Allowed {
		return nil, 0, false, d, fmt.Errorf("%w: knowledge base", domain.ErrNotFound)
	}
	return nil, 0, false, d, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// changeKB runs change on a knowledge base the principal may manage.
func (k *Knowledge) changeKB(ctx context.Context, who access.Principal, kbID string, change func(*knowledge.KnowledgeBase) ([]domain.Event, error)) (Result, error) {
	p := k.p
	if _, err := p.authorize(ctx, who, access.KBManage, access.OrgResource(who.OrgID), "knowledge-bases/"+kbID); err != nil {
		return Result{}, err
	}
	_, _, _, d, err := k.loadKB(ctx, who, kbID, access.KBManage)
	if err != nil {
		return Result{}, err
	}
	stream, _ := kbStream(who.OrgID, kbID)
	return p.execute(ctx, who, d, stream, newKB, func(a aggregate) ([]domain.Event, error) {
		return change(a.(*knowledge.KnowledgeBase))
	})
}

// UpdateKnowledgeBase changes a base's name or description.
func (k *Knowledge) UpdateKnowledgeBase(ctx context.Context, who access.Principal, kbID string, name, description *string) (Result, error) {
	return k.changeKB(ctx, who, kbID, func(kb *knowledge.KnowledgeBase) ([]domain.Event, error) {
		return kb.Update(name, description)
	})
}

// SetKnowledgeBaseGrants replaces a base's grants. Grants give kb:read
// and kb:write only, and on a restricted base only owners and admins keep
// kb:manage, so a caller who would not may not restrict it: the change
// would lock them out of undoing it.
func (k *Knowledge) SetKnowledgeBaseGrants(ctx context.Context, who access.Principal, kbID string, grants []knowledge.Grant) (Result, error) {
	return k.changeKB(ctx, who, kbID, func(kb *knowledge.KnowledgeBase) ([]domain.Event, error) {
		normalized, err := knowledge.NormalizeGrants(grants)
		if err != nil {
			return nil, err
		}
		if d := access.Decide(who, access.KBManage, knowledge.Resource(who.OrgID, normalized)); !d.Allowed {
			k.p.RecordDenial(ctx, who, d, "knowledge-bases/"+kbID+"/grants")
			return nil, fmt.Errorf("%w: only owners and admins may restrict a knowledge base, since only they keep managing it once restricted", domain.ErrForbidden)
		}
		return kb.SetGrants(normalized)
	})
}

// ArchiveKnowledgeBase archives a base: it is no longer searched or written.
func (k *Knowledge) ArchiveKnowledgeBase(ctx context.Context, who access.Principal, kbID string) (Result, error) {
	return k.changeKB(ctx, who, kbID, func(kb *knowledge.KnowledgeBase) ([]domain.Event, error) {
		return kb.Archive()
	})
}

// DocumentInput is a document's extracted text and what it came from.
type DocumentInput struct {
	Title       string
	ContentType string
	Content     string
}

// DocumentAdded is what adding a document returns: the document as
// recorded, its content hash computed by the domain.
type DocumentAdded struct {
	Result
	Document *knowledge.DocumentAdded
}

// AddDocument adds a document to a base the principal may write. Its id is
// derived from the base and the content's digest (see WithDigestKeys), so
// the same content is never ingested twice into one base: a second add of
// it is a conflict.
func (k *Knowledge) AddDocument(ctx context.Context, who access.Principal, kbID string, in DocumentInput) (DocumentAdded, error) {
	p := k.p
	if _, err := p.authorize(ctx, who, access.KBWrite, access.OrgResource(who.OrgID), "knowledge-bases/"+kbID+"/documents"); err != nil {
		return DocumentAdded{}, err
	}
	kb, _, _, d, err := k.loadKB(ctx, who, kbID, access.KBWrite)
	if err != nil {
		return DocumentAdded{}, err
	}
	if err := kb.MustAcceptDocuments(); err != nil {
		return DocumentAdded{}, err
	}
	// Named by the content's digest under the organization's key: a
	// plain hash in the id (and so in the stream's name, which nothing
	// seals) would confirm a guess of the content after it was shredded.
	digest, err := p.contentDigest(ctx, who.OrgID)
	if err != nil {
		return DocumentAdded{}, err
	}
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(who.OrgID+"/"+kbID+"/"+digest(in.Content))).String()
	stream, err := docStream(who.OrgID, id)
	if err != nil {
		return DocumentAdded{}, err
	}
	res, err := p.create(ctx, who, d, stream, newDocument, func(a aggregate) ([]domain.Event, error) {
		doc := a.(*knowledge.Document)
		if doc.Exists() {
			// The id comes from the content, not from an Idempotency-Key, so
			// this is a conflict whatever key the request carries.
			return nil, fmt.Errorf("%w: this knowledge base already holds a document with identical content (%s)", domain.ErrConflict, id)
		}
		if err := p.admitResource(ctx, who.OrgID, ResourceDocuments); err != nil {
			return nil, err
		}
		return doc.AddDocument(kb, id, in.Title, in.ContentType, in.Content)
	})
	if err != nil {
		return DocumentAdded{}, err
	}
	e, res, err := created[*knowledge.DocumentAdded](ctx, p, stream, res)
	if err != nil {
		return DocumentAdded{}, err
	}
	return DocumentAdded{Result: res, Document: e}, nil
}

// changeDocument runs change on a document of a base the principal may
// write; a document of another base answers like a missing one.
func (k *Knowledge) changeDocument(ctx context.Context, who access.Principal, kbID, docID string,
	change func(*knowledge.KnowledgeBase, *knowledge.Document) ([]domain.Event, error)) (Result, error) {
	p := k.p
	if _, err := p.authorize(ctx, who, access.KBWrite, access.OrgResource(who.OrgID), "knowledge-bases/"+kbID+"/documents/"+docID); err != nil {
		return Result{}, err
	}
	kb, _, _, d, err := k.loadKB(ctx, who, kbID, access.KBWrite)
	if err != nil {
		return Result{}, err
	}
	stream, err := docStream(who.OrgID, docID)
	if err != nil {
		return Result{}, fmt.Errorf("%w: document", domain.ErrNotFound)
	}
	return p.execute(ctx, who, d, stream, newDocument, func(a aggregate) ([]domain.Event, error) {
		doc := a.(*knowledge.Document)
		if !doc.Exists() || doc.KnowledgeBaseID() != kbID {
			return nil, fmt.Errorf("%w: document", domain.ErrNotFound)
		}
		return change(kb, doc)
	})
}

// ReplaceDocument records a new version of a document's content.
func (k *Knowledge) ReplaceDocument(ctx context.Context, who access.Principal, kbID, docID string, in DocumentInput) (Result, error) {
	return k.changeDocument(ctx, who, kbID, docID, func(kb *knowledge.KnowledgeBase, doc *knowledge.Document) ([]domain.Event, error) {
		return doc.Replace(kb, in.Title, in.ContentType, in.Content)
	})
}

// DeleteDocument deletes a document; its chunks leave retrieval as soon as
// the read models apply the event, which the command waits for.
func (k *Knowledge) DeleteDocument(ctx context.Context, who access.Principal, kbID, docID string) (Result, error) {
	return k.changeDocument(ctx, who, kbID, docID, func(kb *knowledge.KnowledgeBase, doc *knowledge.Document) ([]domain.Event, error) {
		return doc.Delete(kb)
	})
}

// RecordSearch appends what a search returned to the audit trail, as
// authorized by d, and returns the search's id and log position. Only the
// search use case of the query side calls it, after it searched.
func (k *Knowledge) RecordSearch(ctx context.Context, who access.Principal, d access.Decision, searched *knowledge.KnowledgeSearched) (string, uint64, error) {
	stream, err := eventstore.NewStreamName(knowledge.SearchCategory, who.OrgID, uuid.Must(uuid.NewV7()).String())
	if err != nil {
		return "", 0, err
	}
	res, _, err := k.p.append(ctx, who, d, stream, eventstore.NoStream(), []domain.Event{searched})
	if err != nil {
		return "", 0, err
	}
	return stream.EntityID, res.LastPosition, nil
}
