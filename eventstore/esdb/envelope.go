package esdb

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// streamID returns stream's name in KurrentDB.
func (s *Store) streamID(stream eventstore.StreamName) string {
	if s.cfg.namespace == "" {
		return stream.String()
	}
	return s.cfg.namespace + "." + stream.String()
}

// isSystem reports whether rec is KurrentDB's own: its type or its
// stream starts with "$".
func isSystem(rec *esdbclient.RecordedEvent) bool {
	return strings.HasPrefix(rec.EventType, "$") || strings.HasPrefix(rec.StreamID, "$")
}

// palisadeStream returns the stream of rec, a record read from $all, and
// whether rec is an event of this store at all: not a system event, in the
// store's namespace, in a stream named like Palisade's.
func (s *Store) palisadeStream(rec *esdbclient.RecordedEvent) (eventstore.StreamName, bool) {
	if isSystem(rec) {
		return eventstore.StreamName{}, false
	}
	name := rec.StreamID
	if s.cfg.namespace != "" {
		var ok bool
		if name, ok = strings.CutPrefix(name, s.cfg.namespace+"."); !ok {
			return eventstore.StreamName{}, false
		}
	}
	stream, err := eventstore.ParseStreamName(name)
	return stream, err == nil
}

// errNoPosition: the server sent an event without its position in the
// log, as EventStoreDB releases before positions on stream reads do.
var errNoPosition = errors.New("the server reported no log position for the event (this adapter needs a KurrentDB or EventStoreDB release that reports positions on stream reads)")

// envelope turns a recorded event of stream into an envelope.
func envelope(rec *esdbclient.RecordedEvent, stream eventstore.StreamName) (eventstore.Envelope, error) {
	position := rec.Position.Commit
	if position == 0 || position == math.MaxUint64 {
		return eventstore.Envelope{}, fmt.Errorf("event %s (%s@%d): %w", rec.EventID, rec.StreamID, rec.EventNumber, errNoPosition)
	}
	env := eventstore.Envelope{
		ID:            rec.EventID,
		Type:          rec.EventType,
		Stream:        stream,
		StreamVersion: rec.EventNumber,
		Position:      position,
		Data:          json.RawMessage(rec.Data),
	}
	if err := eventstore.UnmarshalMetadata(rec.UserMetadata, &env.Metadata); err != nil {
		return eventstore.Envelope{}, fmt.Errorf("event %s (%s@%d) at %d: metadata: %w", rec.EventID, rec.StreamID, rec.EventNumber, position, err)
	}
	env.OccurredAt = env.OccurredAt.UTC()
	return env, nil
}

// eventData turns the events of an append to stream id into the client's,
// with their ids (see the package documentation) and their metadata as
// JSON, occurred_at defaulting to now and cut to microseconds.
func eventData(id string, expected eventstore.ExpectedVersion, events []eventstore.NewEvent, now time.Time) ([]esdbclient.EventData, error) {
	out := make([]esdbclient.EventData, len(events))
	for i, e := range events {
		eventID := e.ID
		if eventID == uuid.Nil {
			if expected.IsAny() {
				eventID = eventstore.NewEventID()
			} else {
				given, err := json.Marshal(e.Metadata)
				if err != nil {
					return nil, fmt.Errorf("event %d metadata: %w", i, err)
				}
				eventID = derivedID(id, expected, i, e.Type, e.Data, given)
			}
		}
		meta := e.Metadata
		if meta.OccurredAt.IsZero() {
			meta.OccurredAt = now
		}
		meta.OccurredAt = meta.OccurredAt.UTC().Truncate(time.Microsecond)
		metaJSON, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("event %d metadata: %w", i, err)
		}
		out[i] = esdbclient.EventData{
			EventID:     eventID,
			EventType:   e.Type,
			ContentType: esdbclient.ContentTypeJson,
			Data:        e.Data,
			Metadata:    metaJSON,
		}
	}
	return out, nil
}

// derivedID returns the id of the event at index in an append to stream
// at expected: a version 8 UUID (RFC 9562 §5.8) made of the first 16
// bytes of a SHA-256 over every input, each prefixed with its length so
// no two different inputs read the same.
func derivedID(stream string, expected eventstore.ExpectedVersion, index int, eventType string, data, metadata []byte) uuid.UUID {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("palisade/eventstore/esdb event id v1"))
	field([]byte(stream))
	field([]byte(expected.String()))
	field([]byte(strconv.Itoa(index)))
	field([]byte(eventType))
	field(data)
	field(metadata)
	var id uuid.UUID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// serverFilter returns the filter a subscription asks the server for:
// the narrowest that KurrentDB can apply and that lets through every event
// filter matches. [eventstore.Filter.Match] still decides in the client.
func (s *Store) serverFilter(filter eventstore.Filter) *esdbclient.SubscriptionFilter {
	base := ""
	if s.cfg.namespace != "" {
		base = s.cfg.namespace + "."
	}
	byStream := func(prefixes ...string) *esdbclient.SubscriptionFilter {
		return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: prefixes}
	}
	switch {
	case filter.OrgID != "" && len(filter.Categories) > 0:
		prefixes := make([]string, len(filter.Categories))
		for i, c := range filter.Categories {
			prefixes[i] = base + eventstore.OrgPrefix(c, filter.OrgID)
		}
		return byStream(prefixes...)
	case filter.OrgID != "":
		// Every category of one org: the category comes first in the
		// name, so this is no prefix, but a pattern (a category is
		// letters, digits, dots and colons).
		return &esdbclient.SubscriptionFilter{
			Type:  esdbclient.StreamFilterType,
			Regex: "^" + regexp.QuoteMeta(base) + "[A-Za-z0-9.:]+-" + regexp.QuoteMeta(filter.OrgID) + "_",
		}
	case len(filter.Categories) > 0:
		prefixes := make([]string, len(filter.Categories))
		for i, c := range filter.Categories {
			prefixes[i] = base + c + "-"
		}
		return byStream(prefixes...)
	case base != "":
		return byStream(base)
	case len(filter.Types) > 0:
		quoted := make([]string, len(filter.Types))
		for i, t := range filter.Types {
			quoted[i] = regexp.QuoteMeta(t)
		}
		return &esdbclient.SubscriptionFilter{
			Type:  esdbclient.EventFilterType,
			Regex: "^(?:" + strings.Join(quoted, "|") + ")$",
		}
	}
	// Everything but system streams.
	return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Regex: "^[^$]"}
}
