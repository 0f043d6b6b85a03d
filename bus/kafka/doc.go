// Package kafka owns carrying the event log over Kafka with
// watermill-kafka/v3: topic names, message keys and headers, the Sarama
// settings of the relay's publisher and of the consumers, the relay that
// publishes the log in batches ([Relay], [Publisher]), and a reference
// consumer ([Tail]). It must never decide anything about events: it does
// not read payloads, filter, reorder or drop events; the log and its
// envelope ([eventstore.ToMessage]) say what a message is, and this package
// only moves it. The one change it makes to a payload is the one it is
// given: [WithoutContent] applies a redaction that the domain defines
// (which fields are content is declared by each event type).
//
// # Topics
//
// Two kinds of topic carry the log, each fed by its own [eventstore.Relay]
// with its own durable checkpoint:
//
//   - Category topics, for downstream systems: one topic per stream
//     category, "palisade.<category>" (palisade.org, palisade.bot,
//     palisade.security), or with the per-org option
//     "palisade.<org>.<category>", so that a Kafka prefix ACL on
//     "palisade.<org>." confines a consumer to one organization. See
//     [TopicFunc] and [ConsumerTopics].
//   - The log topic, [LogTopic] ("palisade-log"), for Palisade's own
//     projections: every event of every organization in one partition, in
//     log order. See [LogTopicFunc] and [EnsureLogTopic].
//
// Content (document text, chunk text, search queries, bot instructions, …)
// is off the category topics unless configured on (PALISADE_KAFKA_CONTENT):
// their relay publishes through [WithoutContent], so downstream systems get
// each content value's SHA-256 and size. The log topic always carries full
// content, because the projections that build the read models need it.
//
// Every message is keyed by its org id and hashed to a partition the way
// the Java client does (murmur2), so all of one organization's events of
// one topic are in one partition, in log order. Headers carry the envelope
// (org_id, type, position, stream, correlation_id, …), the value is the
// event's JSON data; README.md beside this file is the format's reference,
// and schemas/ holds a JSON Schema per event type.
//
// # Why projections read one totally ordered topic
//
// The projection engine makes handlers idempotent by log position: a
// projection records the highest position it applied and acknowledges,
// without applying, any event at or below it. That is exactly right for a
// stream in log order, where "at or below" means "already seen". It is
// wrong for a merge of several topics, or of several partitions: Kafka
// orders messages within a partition only, so once org B's event at
// position 7 has been applied, org A's event at position 5 arriving from
// another partition would be taken for a redelivery and silently skipped.
// Merging category topics would therefore lose events, not just reorder
// them. So Palisade's own consumer groups (one per projection, see
// [SubscriberFunc]) read [LogTopic], which has exactly one partition and so
// the log's total order; [EnsureLogTopic] refuses a log topic with more. A
// single partition is not the bottleneck: a projection acknowledges an
// event once it is queued in order, and applies the queue in batches (see
// package consumer). Category topics, partitioned and access-controlled per
// organization, are the downstream interface, where the guarantee is
// per organization per category (see README.md).
//
// # Delivery
//
// At least once, end to end. The relay ([Relay]) saves its checkpoint
// after Kafka acknowledged a whole batch (all in-sync replicas, idempotent
// producer), so a crash in between, or a failed batch, publishes the
// batch again; consumers commit an offset only
// after their handler acknowledged the message, so a crash in between
// receives it again. (Palisade's projections acknowledge once an event is
// queued, before it is applied; what a crash loses from the queue their
// start's catch-up from the log applies.) New consumer groups start at the oldest retained
// offset (see [NewSubscriber]). Consumers deduplicate by event id, or by
// position: within one partition, an event whose position is not above
// the last one seen there is a repeat.
//
// # Throughput
//
// [Relay] publishes whatever the log holds after its checkpoint, up to
// [DefaultBatchSize] events, in one [Publisher.PublishBatch], and saves
// its checkpoint once per batch; [Publisher] hands the batch to Sarama's
// SendMessages, which sends it in one produce request or a few. An idle
// log's event still goes out at once, alone. watermill-kafka's own
// publisher sends one message per produce request and waits for its
// answer (one round trip to the partition leader per event: 60–90µs
// against in-process kfake, a millisecond or more against a replicated
// cluster), which is why the relay does not use it. Saving the durable
// checkpoint after every batch is affordable; [PeriodicCheckpoint] saves
// less often still. See the benchmarks in bench_test.go and BENCHMARKS.md.
package kafka
