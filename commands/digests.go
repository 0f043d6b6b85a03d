package commands

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/sealing"
)

// DigestKeys hands out the keys of organizations' content digests
// (sealing/keyring): what names content where the content itself is not
// sealed, such as a document id derived from its text, or a chunk's key
// in the embedding store.
type DigestKeys interface {
	DigestKey(ctx context.Context, orgID string) (sealing.DigestKey, error)
}

// WithDigestKeys makes the pipeline name content of an organization by its
// digest under that organization's digest key (a document's id, a chunk's
// hash), so that no id, stream name or embedding-store key is a plain hash
// of content, which would confirm a guess of it after the content was
// shredded. Without it (tests over a log that seals nothing) content is
// named by its plain SHA-256.
func WithDigestKeys(k DigestKeys) Option {
	return func(p *Pipeline) { p.digests = k }
}

// contentDigest returns orgID's function naming content: its keyed digest
// (sealing.DigestKey.ContentDigest), or its plain SHA-256 without digest
// keys.
func (p *Pipeline) contentDigest(ctx context.Context, orgID string) (func(content string) string, error) {
	if p.digests == nil {
		return knowledge.ContentHash, nil
	}
	key, err := p.digests.DigestKey(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("digest key: %w", err)
	}
	return func(content string) string { return key.ContentDigest([]byte(content)) }, nil
}
