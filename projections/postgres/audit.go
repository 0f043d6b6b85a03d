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
	// and an event not past its last position is already there. The same
	// statement keeps the event's narrative (audit_narratives): a new
	// correlation starts one, a later event of it extends it; an event
	// that was already there inserts no row, so a redelivery counts
	// nothing twice.
	addAuditSQL = `WITH added AS (
		INSERT INTO audit_events (org_id, sequence, ` + auditColumns + `)
		SELECT $1, last.sequence + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22
		FROM (SELECT coalesce(max(sequence), 0) AS sequence, coalesce(max(position), 0) AS position
		      FROM audit_events WHERE org_id = $1) last
		WHERE last.position < $2
		RETURNING org_id, correlation_id, sequence, occurred_at)
	INSERT INTO audit_narratives AS n (org_id, correlation_id, first_sequence, last_sequence, steps, started_at, ended_at)
	SELECT org_id, correlation_id, sequence, sequence, 1, occurred_at, occurred_at FROM added WHERE correlation_id <> ''
	ON CONFLICT (org_id, correlation_id) DO UPDATE
	SET last_sequence = EXCLUDED.last_sequence, steps = n.steps + 1, ended_at = greatest(n.ended_at, EXCLUDED.ended_at)
	WHERE n.last_sequence < EXCLUDED.last_sequence`
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
	if !q.Since.IsZero() {
		cond("occurred_at >=", q.Since)
	}
	args = append(args, limitOf(q.Limit))
	sb.WriteString(" ORDER BY sequence LIMIT $" + strconv.Itoa(len(args)))
	return sb.String(), args
}

// scanAuditEvent scans a row of sequence and auditColumns, then extra.
func scanAuditEvent(rows pgx.Rows, org string, extra ...any) (projections.AuditEvent, error) {
	var (
		e                                 projections.AuditEvent
		env                               = &e.Event
		sequence, position, streamVersion int64
		data                              []byte
	)
	dest := append([]any{&sequence, &position, &env.ID, &env.Type, &env.Stream.Category, &env.Stream.OrgID, &env.Stream.EntityID,
		&streamVersion, &env.Actor.Subject, &env.Actor.Kind, &env.Actor.Roles, &env.Actor.OnBehalfOf,
		&env.Actor.Scope, &env.Actor.CreatedBy, &env.CorrelationID, &env.CausationID, &env.TraceID, &env.Authorization, &env.IdempotencyKey,
		&env.SchemaVersion, &env.OccurredAt, &data}, extra...)
	err := rows.Scan(dest...)
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

// Narratives pages audit_narratives newest first; each filter on the steps
// is an EXISTS over the correlation's events (index audit_events_correlation).
func (a *Audit) Narratives(ctx context.Context, scope access.Scope, q projections.NarrativeQuery) ([]projections.NarrativeRow, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	before := int64(math.MaxInt64)
	if q.After > 0 && q.After <= math.MaxInt64 {
		before = int64(q.After)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT e.sequence, ` + prefixed("e.", auditColumns) + `, n.last_sequence, n.steps, n.ended_at
		FROM audit_narratives n
		JOIN audit_events e ON e.org_id = n.org_id AND e.sequence = n.first_sequence
		WHERE n.org_id = $1 AND n.first_sequence < $2`)
	args := []any{org, before}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !q.Since.IsZero() {
		sb.WriteString(" AND n.started_at >= " + arg(q.Since))
	}
	if !q.Until.IsZero() {
		sb.WriteString(" AND n.started_at < " + arg(q.Until))
	}
	step := func(column string, v string) {
		if v != "" {
			sb.WriteString(` AND EXISTS (SELECT 1 FROM audit_events s WHERE s.org_id = n.org_id
				AND s.correlation_id = n.correlation_id AND s.` + column + ` = ` + arg(v) + `)`)
		}
	}
	step("actor_subject", q.Actor)
	step("type", q.Type)
	step("stream", q.Stream)
	sb.WriteString(" ORDER BY n.first_sequence DESC LIMIT " + arg(limitOf(q.Limit)))

	out := []projections.NarrativeRow{}
	err = a.db.query(ctx, org, sb.String(), args, func(rows pgx.Rows) error {
		var (
			r       projections.NarrativeRow
			last, n int64
			err     error
		)
		r.Root, err = scanAuditEvent(rows, org, &last, &n, &r.EndedAt)
		r.CorrelationID, r.LastSequence, r.Steps, r.EndedAt = r.Root.Event.CorrelationID, uint64(last), int(n), r.EndedAt.UTC()
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit narratives: %w", err)
	}
	return out, nil
}

// prefixed qualifies each column of a comma-separated list.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
