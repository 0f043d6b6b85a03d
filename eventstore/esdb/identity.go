package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// The log's identity is the first event of a stream of its own, written
// once by whichever store asks first (NoStream: of two racing, one wins
// and the other reads the winner's). Its name has no "-", so it is never
// a Palisade stream: ReadAll, Subscribe and Head pass over it.
const (
	identityStream = "palisade.log"
	identityType   = "LogIdentified"
)

type identityData struct {
	LogID string `json:"log_id"`
}

// LogID returns the identity of the log: a random id stored in the log
// itself (in the namespace, with [WithNamespace]), created by the first
// call against a log without one. Every store reading the same log, on
// every replica and after every restart, gets the same id. Read models
// record it to tell which log they were built from.
func (s *Store) LogID(ctx context.Context) (string, error) {
	if s.closed.Load() {
		return "", fmt.Errorf("log id: %w", eventstore.ErrClosed)
	}
	s.mu.Lock()
	known := s.logID
	s.mu.Unlock()
	if known != "" {
		return known, nil
	}
	ctx, done := s.scope(ctx)
	defer done()
	stream := identityStream
	if s.cfg.namespace != "" {
		stream = s.cfg.namespace + "." + stream
	}
	// Twice at most: a lost race to create the identity reads the winner's.
	for range 2 {
		id, err := s.readIdentity(ctx, stream)
		if err != nil {
			return "", fmt.Errorf("log id: read %s: %w", stream, s.failure(ctx, err))
		}
		if id == "" {
			id, err = s.createIdentity(ctx, stream)
			if isCode(err, esdbclient.ErrorCodeWrongExpectedVersion) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("log id: create %s: %w", stream, s.failure(ctx, err))
			}
		}
		s.mu.Lock()
		s.logID = id
		s.mu.Unlock()
		return id, nil
	}
	return "", fmt.Errorf("log id: %s is neither readable nor creatable", stream)
}

func (s *Store) readIdentity(ctx context.Context, stream string) (string, error) {
	return call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) (string, error) {
		rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{From: esdbclient.Start{}}, 1)
		if err != nil {
			return "", err
		}
		defer rs.Close()
		ev, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF), isCode(err, esdbclient.ErrorCodeResourceNotFound):
			return "", nil
		case err != nil:
			return "", err
		}
		var data identityData
		if err := json.Unmarshal(ev.OriginalEvent().Data, &data); err != nil || data.LogID == "" {
			return "", fmt.Errorf("stream %s does not hold a log identity (%v)", stream, err)
		}
		return data.LogID, nil
	})
}

func (s *Store) createIdentity(ctx context.Context, stream string) (string, error) {
	id := uuid.NewString()
	data, err := json.Marshal(identityData{LogID: id})
	if err != nil {
		return "", err
	}
	event := esdbclient.EventData{EventID: uuid.New(), EventType: identityType, ContentType: esdbclient.ContentTypeJson, Data: data}
	_, err = call(ctx, s, writeCall, func(ctx context.Context, c *esdbclient.Client) (*esdbclient.WriteResult, error) {
		return c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, event)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}
