// Package esdb owns the production event log: [Store] implements
// [eventstore.Store] on KurrentDB (EventStoreDB) through
// github.com/EventStore/EventStore-Client-Go/v4, and passes the contract
// suite in eventstore/storetest (with sparse positions).
//
// Mapping. A stream "{category}-{org}_{entity}" is the KurrentDB stream of
// the same name (prefixed "{namespace}." with [WithNamespace]). An event's
// type is the envelope type, its data the envelope's JSON data, and its
// user metadata the [eventstore.Metadata] as JSON, occurred_at at
// microsecond precision. Expected versions map to the client's revisions:
// [eventstore.NoStream] to NoStream, [eventstore.Any] to Any,
// [eventstore.Exact](v) to revision v; a wrong-expected-version answer is
// an [eventstore.ErrConflict]. [eventstore.ValidateAppend] runs before
// anything is sent, so an append of another organization's event is
// refused without a network call. The log's identity ([Store.LogID]) is
// the first event of the stream "palisade.log" (namespaced likewise),
// which is never a Palisade stream, so reads, subscriptions and Head pass
// over it.
//
// Event ids. An event without an id gets one the adapter derives, so that
// a retried append is recognised by KurrentDB, which answers an append
// whose event ids match the events already at the expected revision with
// success and writes nothing. With [eventstore.NoStream] and
// [eventstore.Exact] the id is a name-based UUID (version 8, SHA-256) of
// the stream, the expected version, the event's index in the append, its
// type, its data and its metadata as the caller gave them: the same append
// retried gets the same ids, while two different appends at the same
// version differ in at least one of these (metadata included, so two
// actors appending the same payload are not mistaken for one retry; the
// loser gets a conflict). With [eventstore.Any] the place in the stream is
// not pinned, and two legitimate appends of equal content would get equal
// ids and the second would be swallowed as a retry; so those events get a
// fresh UUIDv7 instead. A caller that retries an Any append itself sets
// NewEvent.ID; KurrentDB recognises such a retry only while the original
// events are in its cache of recent event ids, so for Any it is best
// effort, where for NoStream and Exact it is certain.
//
// Positions. Envelope.Position is KurrentDB's commit position, the byte
// offset of the event's record in the log (each event commits itself, so
// commit = prepare). Positions increase with the log but are sparse: they
// skip numbers, and system records take positions too. An append is
// answered with one position for the whole append; for one event that is
// the event's, and for several the adapter reads the appended events back
// to report FirstPosition and LastPosition exactly. Servers that report no
// position on stream reads (older EventStoreDB releases) are refused with
// an error rather than given positions the log does not have. ReadAll and
// Subscribe take 0 or a position this store handed out: KurrentDB reads
// the log at the offset it is given, and refuses one that falls inside a
// record (ReadAll answers such a position at or past this store's head
// with no events, as there are none after it).
//
// Reading $all. Events of system streams and system types (names starting
// with "$") are skipped, and so are events of streams whose names are not
// Palisade stream names (or, with a namespace, of other namespaces). An
// event in a Palisade stream whose metadata does not decode is an error,
// not skipped: it would be an event of the log that no reader sees. The
// v4 client cannot filter a read of $all on the server (ReadAllOptions has
// no filter), so ReadAll pages through $all and filters in the client.
// Subscribe asks the server to filter (SubscribeToAllOptions.Filter): by
// stream-name prefixes when the filter names an org and categories
// ("{category}-{org}_"), by the regular expression "^[A-Za-z0-9.:]+-{org}_" (any
// category, then the org) when it names only an org (every category of one org cannot be a prefix, the
// category comes first), by prefixes "{category}-" for categories alone,
// by an exact event-type expression for types alone, and by "^[^$]"
// (no system streams) otherwise; [eventstore.Filter.Match] then decides
// in the client. Head reads $all backwards from the end, skipping system
// events.
//
// Subscribe is a catch-up subscription to $all, after the given position.
// When the subscription drops (the server restarts, the connection
// breaks, the server drops a slow subscriber), it subscribes again after
// the last position it delivered, with backoff, so nothing is delivered
// twice or skipped; it returns only when ctx ends, the handler fails, the
// store closes, the server refuses the subscription for good
// (authentication or access), or an event of the store cannot be read.
//
// Connection. [Open] does no network I/O, so Palisade can start while
// KurrentDB is still starting. The first call waits for the server to
// answer a read of $all, bounded by its ctx and [WithStartupWait]. The v4
// client gives up for good when its node discovery fails (it closes
// itself); the adapter then replaces it with a new client and waits again,
// the next time it is needed. It also replaces the client when the server
// is unavailable. A read that failed that way is tried again (up to three
// times, each waiting for the server as above); an append only when the
// client refused it before sending it, since otherwise its outcome is
// unknown (the caller may retry: see event ids). Each call into the
// client runs where the caller can abandon it when ctx ends or the client
// is replaced.
//
// Conditional appends. [Store.AppendIf] is not atomic across the two
// streams: the v4 client appends to one stream per call and KurrentDB has
// no multi-stream transaction, so the adapter reads the condition
// stream's last revision and then appends. A write to the condition
// stream that commits in that window (one round trip) is not seen: a
// command decided on an organization's membership at version W may still
// land just after the event that made it W+1. The embedded adapter has no
// such window (the check runs in the append's transaction). Callers that
// need the guarantee strictly should run on the embedded store, or
// append the dependent event to the condition stream itself.
//
// This package must never interpret event payloads, never decide who may
// append (callers authorize; the store checks only what
// [eventstore.ValidateAppend] checks, plus KurrentDB's reservation of
// "$" event types), and never log credentials from the connection string.
package esdb
