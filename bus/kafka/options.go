package kafka

import (
	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
)

// Option tunes a publisher, a subscriber or [EnsureLogTopic].
type Option func(*options)

type options struct {
	logger watermill.LoggerAdapter
	tune   []func(*sarama.Config)
}

// WithLogger sets the Watermill logger (default: none).
func WithLogger(l watermill.LoggerAdapter) Option {
	return func(o *options) { o.logger = l }
}

// WithSaramaConfig changes the Sarama configuration after this package
// has set its own: for TLS, SASL, client ids, timeouts or compression.
// Changing what this package sets on purpose (acks, idempotence, the
// partitioner, the initial offset) changes the guarantees README.md states.
func WithSaramaConfig(tune func(*sarama.Config)) Option {
	return func(o *options) { o.tune = append(o.tune, tune) }
}

func apply(opts []Option) options {
	o := options{logger: watermill.NopLogger{}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o options) saramaConfig(cfg *sarama.Config) *sarama.Config {
	for _, tune := range o.tune {
		tune(cfg)
	}
	return cfg
}
