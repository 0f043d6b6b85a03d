package kafka

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// RedactContent replaces the content fields of an event's JSON payload,
// given the event's type (events.Registry.RedactContent is one, adapted).
type RedactContent func(eventType string, data []byte) ([]byte, error)

// WithoutContent wraps the category topics' publisher so that every
// message leaves with its payload passed through redact: content fields
// (document text, chunk text, search queries, bot instructions, …) become
// their SHA-256 and size, and downstream systems get the audit record
// without the content. The log topic's publisher is never wrapped: the
// projections that read it need the content to build the read models.
// This package applies redact; it does not decide what is content.
//
// Close does not close pub: the caller that opened it closes it.
func WithoutContent(pub message.Publisher, redact RedactContent) message.Publisher {
	return &contentFreePublisher{pub: pub, redact: redact}
}

type contentFreePublisher struct {
	pub    message.Publisher
	redact RedactContent
}

func (p *contentFreePublisher) Publish(topic string, msgs ...*message.Message) error {
	out := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		data, err := p.redact(msg.Metadata.Get(eventstore.MetaType), msg.Payload)
		if err != nil {
			return fmt.Errorf("redact message %s for %s: %w", msg.UUID, topic, err)
		}
		// A copy: the relay's message is not changed under it.
		c := message.NewMessage(msg.UUID, data)
		for k, v := range msg.Metadata {
			c.Metadata.Set(k, v)
		}
		c.SetContext(msg.Context())
		out[i] = c
	}
	return p.pub.Publish(topic, out...)
}

func (p *contentFreePublisher) Close() error { return nil }
