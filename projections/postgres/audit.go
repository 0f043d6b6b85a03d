package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// Audit is the PostgreSQL adapter of projections.AuditModel: each
// organization's envelopes, keyed by position and numbered by sequence.
// Adding an envelope at or before the organization's last indexed position
// does nothing, so redelivery is harmless and numbers stay gapless.
type Audit struct{ db *db }

var _ projections.AuditModel = (*Audit)(nil)

const (
	auditColumns = `position, id, type, stream_category, stream_org_id, stream_entity_id, stream_version,
		actor_subject, actor_kind, actor_roles, actor_on_behalf_of, actor_scope, actor_created_by,
		correlation_id, causation_id, trace_id, authorization_reason, idempotency_key, schema_version, occurred_at, data`
	// One statement, so that it queues in the unit's batch like every
	// other write: the organization's next number is one past its last,
	// and an event not past its last position is already there.
	addAuditSQL = `INSERT INTO audit_events (org_id, sequence, ` + auditColumns + `)
		SELECT $1, last.sequence + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22
		FROM (SELECT coalesce(max(sequence), 0) AS sequence, coalesce(max(position), 0) AS position
		      FROM audit_events WHERE org_id = $1) last
		WHERE last.position < $2`
)

func (a *Audit) Add(ctx context.Context, scope access.Scope, env eventstore.Envelope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if env.OrgID != org {
		return fmt.Errorf("audit add: %w", eventstore.ErrOrgMismatch)
	}
	if env.Position > math.MaxInt64 || env.StreamVersion > math.MaxInt64 {
		return fmt.Errorf("audit add: position %d or stream version %d out of range", env.Position, env.StreamVersion)
	}
	var data []byte
	if env.Data != nil {
		data = []byte(env.Data)
	}
	err = a.db.exec(ctx, org, addAuditSQL, org, int64(env.Position), env.ID, env.Type,
		env.Stream.Category, env.Stream.OrgID, env.Stream.EntityID, int64(env.StreamVersion),
		env.Actor.Subject, env.Actor.Kind, env.Actor.Roles, env.Actor.OnBehalfOf, env.Actor.Scope, env.Actor.CreatedBy,
		env.CorrelationID, env.CausationID, env.TraceID, env.Authorization, env.IdempotencyKey,
		env.SchemaVersion, env.OccurredAt, data)
	if err != nil {
		return fmt.Errorf("audit add: %w", err)
	}
	return nil
}

func (a *Audit) Events(ctx context.Context, scope access.Scope, q projections.AuditQuery) ([]projections.AuditEvent, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	out := []projections.AuditEvent{}
	if q.After >= math.MaxInt64 {
		return out, nil // no sequence is stored beyond
	}
	sql, args := auditQuery(org, q)
	err = a.db.query(ctx, org, sql, args, func(rows pgx.Rows) error {
		e, err := scanAuditEvent(rows, org)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return out, nil
}

// auditQuery writes only the conditions q asks for, so that each shape of
// query gets its own plan and its index; every index ends with sequence,
// so the cursor is an index condition.
func auditQuery(org string, q projections.AuditQuery) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`SELECT sequence, ` + auditColumns + ` FROM audit_events WHERE org_id = $1 AND sequence > $2`)
	args := []any{org, int64(q.After)}
	cond := func(sql string, arg any) {
		args = append(args, arg)
		sb.WriteString(" AND " + sql + " $" + strconv.Itoa(len(args)))
	}
	if len(q.Types) > 0 {
		args = append(args, q.Types)
		sb.WriteString(" AND type = ANY($" + strconv.Itoa(len(args)) + ")")
	}
	if q.Stream != "" {
		cond("stream =", q.Stream)
	}
	if q.Actor != "" {
		cond("actor_subject =", q.Actor)
	}
	if q.CorrelationID != "" {
		cond("correlation_id =", q.CorrelationID)
	}
	args = append(args, limitOf(q.Limit))
	sb.WriteString(" ORDER BY sequence LIMIT $" + strconv.Itoa(len(args)))
	return sb.String(), args
}

func scanAuditEvent(rows pgx.Rows, org string) (projections.AuditEvent, error) {
	var (
		e                                 projections.AuditEvent
		env                               = &e.Event
		sequence, position, streamVersion int64
		data                              []byte
	)
	err := rows.Scan(&sequence, &position, &env.ID, &env.Type, &env.Stream.Category, &env.Stream.OrgID, &env.Stream.EntityID,
		&streamVersion, &env.Actor.Subject, &env.Actor.Kind, &env.Actor.Roles, &env.Actor.OnBehalfOf,
		&env.Actor.Scope, &env.Actor.CreatedBy, &env.CorrelationID, &env.CausationID, &env.TraceID, &env.Authorization, &env.IdempotencyKey,
		&env.SchemaVersion, &env.OccurredAt, &data)
	if err != nil {
		return e, err
	}
	e.Sequence = uint64(sequence)
	env.OrgID = org
	env.Position, env.StreamVersion = uint64(position), uint64(streamVersion)
	env.OccurredAt = env.OccurredAt.UTC()
	if data != nil {
		env.Data = json.RawMessage(data)
	}
	return e, nil
}
