package app

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/bus/fanout"
	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// startBus starts the bus the configuration names, attaches the
// projections to it as cqrs event groups on a Watermill router, and starts
// the relays from the log once they listen.
func (a *App) startBus(ctx context.Context) error {
	wlog := consumer.NewWatermillLogger(a.cfg.Logger.With("component", "watermill"))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, wlog)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	a.router = router
	var startRelays func()
	if len(a.cfg.KafkaBrokers) > 0 {
		startRelays, err = a.attachKafka(ctx, router)
	} else {
		startRelays, err = a.attachInProcess(ctx, router)
	}
	if err != nil {
		return err
	}
	go func() { a.done <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-a.done:
		return fmt.Errorf("router stopped at start: %w", err)
	}
	startRelays()
	close(a.ready)
	return nil
}

// attachInProcess is the in-process bus: one relay reads the log and
// publishes each event once to one fanout bus, which hands it to every
// group's subscriber (each group is its own consumer group, the
// in-process counterpart of one Kafka consumer group per projection).
// Publishing blocks until every subscriber has acknowledged, which keeps
// each group's input in log order; a group acknowledges once the event is
// queued in its applier (consumer/applier.go), not once applied, so the
// groups still apply in parallel and a slow one holds the others back only
// when its queue is full. One relay instead of one per group: reading the
// log, building the message and copying it into a channel per group cost
// about a sixth of the command path's CPU. fanout rather than Watermill's
// gochannel: it shares each message's metadata between the groups instead
// of copying it for each (see package fanout).
func (a *App) attachInProcess(ctx context.Context, router *message.Router) (func(), error) {
	bus := fanout.New()
	a.inProcessBus = bus
	// Each group receives only the events it has a handler for; the bus
	// moves its position past the others itself (consumer.Engine.Pass),
	// sparing a dozen groups a message, a router's handling and an
	// acknowledgement for each event they do nothing with.
	err := a.Engine.Attach(router, busTopic, func(group string) (message.Subscriber, error) {
		return bus.Filtered(fanout.Filter{Wants: a.Engine.Wants(group), Pass: a.Engine.Pass(group)}), nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		checkpoint := eventstore.NewMemoryCheckpoint(a.rebuilt)
		a.lag.addRelay("in-process", checkpoint)
		relay := eventstore.NewRelay(a.Log, bus, func(eventstore.Envelope) string { return busTopic },
			checkpoint, a.cfg.Logger.With("component", "relay"))
		a.relays.Add(1)
		go a.runRelay(ctx, "in-process", relay)
	}, nil
}

// attachKafka carries the log over Kafka. Projections consume the log
// topic, which has one partition so that it holds the whole log in order
// (a projection's position check would take a late event of another
// partition for a repeat); downstream systems consume per-category topics
// keyed by org. Two relays publish them, each from its own durable
// checkpoint beside the log, in batches (see kafka.Relay).
func (a *App) attachKafka(ctx context.Context, router *message.Router) (func(), error) {
	wlog := consumer.NewWatermillLogger(a.cfg.Logger.With("component", "kafka"))
	brokers := a.cfg.KafkaBrokers
	if err := kafka.EnsureLogTopic(ctx, brokers, kafka.WithLogger(wlog)); err != nil {
		return nil, fmt.Errorf("kafka log topic: %w", err)
	}
	publisher, err := kafka.NewPublisher(brokers, kafka.WithLogger(wlog))
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	subscriber := kafka.SubscriberFunc(brokers, kafka.WithLogger(wlog))
	if a.replicated() {
		// Every replica applies the whole log to its groups (the shared
		// read models take each event once; the in-memory groups are its
		// own), so each has consumer groups of its own: replicas sharing
		// one would split the log topic's partition between them.
		shared := subscriber
		subscriber = func(group string) (message.Subscriber, error) { return shared(group + "." + a.replicaID) }
	}
	if err := a.Engine.Attach(router, kafka.LogTopic, subscriber); err != nil {
		_ = publisher.Close()
		return nil, err
	}
	a.kafkaPublisher = publisher
	topics := map[string]eventstore.TopicFunc{
		"relay.kafka.log":        kafka.LogTopicFunc(),
		"relay.kafka.categories": kafka.TopicFunc(a.cfg.KafkaTopicPerOrg),
	}
	publishers := map[string]kafka.BatchPublisher{
		"relay.kafka.log":        publisher,
		"relay.kafka.categories": a.downstreamPublisher(publisher),
	}
	if a.replicated() {
		a.closers = append(a.closers, publisher.Close)
		return func() {
			relays := map[string]func(eventstore.Checkpoint) *kafka.Relay{}
			for name, topic := range topics {
				relays[name] = func(checkpoint eventstore.Checkpoint) *kafka.Relay {
					return kafka.NewRelay(a.Log, publishers[name], topic, checkpoint, a.cfg.Logger.With("component", "relay", "relay", name))
				}
			}
			a.startElectedRelays(ctx, relays)
		}, nil
	}
	checkpoints := map[string]*kafka.PeriodicCheckpoint{
		"relay.kafka.log":        kafka.NewPeriodicCheckpoint(a.checkpoint("relay.kafka.log"), 100*time.Millisecond),
		"relay.kafka.categories": kafka.NewPeriodicCheckpoint(a.checkpoint("relay.kafka.categories"), 100*time.Millisecond),
	}
	// Shutdown: the router closes first (Close), then these run in order.
	a.closers = append(a.closers, func() error {
		for _, c := range checkpoints {
			_ = c.Flush(context.Background())
		}
		return publisher.Close()
	})
	return func() {
		for name, topic := range topics {
			a.lag.addRelay(name, checkpoints[name])
			relay := kafka.NewRelay(a.Log, publishers[name], topic, checkpoints[name], a.cfg.Logger.With("component", "relay", "relay", name))
			a.relays.Add(1)
			go a.runRelay(ctx, name, relay)
		}
	}, nil
}

// downstreamPublisher is the category topics' publisher: content fields
// redacted to their hash and size unless KafkaContent is set. The log
// topic keeps full content, which the projections need.
func (a *App) downstreamPublisher(pub kafka.BatchPublisher) kafka.BatchPublisher {
	if a.cfg.KafkaContent {
		return pub
	}
	registry := events.NewRegistry()
	return kafka.WithoutContent(pub, func(eventType string, data []byte) ([]byte, error) {
		out, _, err := registry.RedactContent(eventType, data)
		return out, err
	})
}

// runRelay keeps a relay running: a publish failure (a broker away) stops
// it, and it starts again from its checkpoint after a backoff.
func (a *App) runRelay(ctx context.Context, name string, relay interface{ Run(context.Context) error }) {
	defer a.relays.Done()
	backoff := 100 * time.Millisecond
	for {
		err := relay.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		a.cfg.Logger.Error("relay stopped; restarting", "relay", name, "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
