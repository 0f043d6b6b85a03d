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
func WithoutContent(pub BatchPublisher, redact RedactContent) BatchPublisher {
	return &contentFreePublisher{pub: pub, redact: redact}
}

type contentFreePublisher struct {
	pub    BatchPublisher
	redact RedactContent
}

func (p *contentFreePublisher) Publish(topic string, msgs ...*message.Message) error {
	out := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		c, err := p.redacted(topic, msg)
		if err != nil {
			return err
		}
		out[i] = c
	}
	return p.pub.Publish(topic, out...)
}

func (p *contentFreePublisher) PublishBatch(batch []Outgoing) error {
	out := make([]Outgoing, len(batch))
	for i, o := range batch {
		c, err := p.redacted(o.Topic, o.Msg)
		if err != nil {
			return err
		}
		out[i] = Outgoing{Topic: o.Topic, Msg: c}
	}
	return p.pub.PublishBatch(out)
}

// redacted returns a copy of msg with its payload redacted: the relay's
// message is not changed under it.
func (p *contentFreePublisher) redacted(topic string, msg *message.Message) (*message.Message, error) {
	data, err := p.redact(msg.Metadata.Get(eventstore.MetaType), msg.Payload)
	if err != nil {
		return nil, fmt.Errorf("redact message %s for %s: %w", msg.UUID, topic, err)
	}
	c := message.NewMessage(msg.UUID, data)
	for k, v := range msg.Metadata {
		c.Metadata.Set(k, v)
	}
	c.SetContext(msg.Context())
	return c, nil
}

func (p *contentFreePublisher) Close() error { return nil }
