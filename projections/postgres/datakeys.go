package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// DataKeys is the keyring.Storage of a replicated deployment: the wrapped
// data keys in tables of the read-model schema (data_keys,
// data_key_subjects, data_key_tombstones), shared by every replica. It
// holds only keys wrapped by the master key. The writes of one
// organization are serialized by a transaction-scoped advisory lock, so
// that replicas racing on a first key, a rotation or a destroy resolve to
// one outcome: one key per version, and no key added beside a tombstone.
type DataKeys struct {
	pool *pgxpool.Pool
}

var _ keyring.Storage = (*DataKeys)(nil)

// OpenDataKeys connects to the schema (empty: public) at appURL as the
// application role, for the data keys alone: the keyring is opened before
// the read models. The schema must have been migrated by [Migrate]. It
// refuses a role that could bypass row-level security, as [Open] does.
func OpenDataKeys(ctx context.Context, appURL, schema string) (*DataKeys, error) {
	schema, err := schemaOf(schema)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(appURL)
	if err != nil {
		return nil, fmt.Errorf("postgres data keys: parse URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = searchPath(schema)
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres data keys: connect: %w", err)
	}
	if err := checkRole(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return &DataKeys{pool: pool}, nil
}

// Close closes the pool.
func (d *DataKeys) Close() { d.pool.Close() }

// lockOrgSQL serializes the key writes of one organization until the
// transaction ends.
const lockOrgSQL = `SELECT pg_advisory_xact_lock(hashtextextended('palisade/data_keys/' || $1, 0))`

const tombstoneSQL = `SELECT EXISTS (SELECT 1 FROM data_key_tombstones WHERE organization = $1)`

// Load implements keyring.Storage.
func (d *DataKeys) Load(ctx context.Context, orgID string) ([]sealing.WrappedKey, bool, error) {
	versions, err := loadVersions(ctx, d.pool, orgID)
	if err != nil {
		return nil, false, err
	}
	return versions, len(versions) > 0, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func loadVersions(ctx context.Context, q querier, orgID string) ([]sealing.WrappedKey, error) {
	rows, err := q.Query(ctx, `SELECT wrapped FROM data_keys WHERE organization = $1 ORDER BY version`, orgID)
	if err != nil {
		return nil, fmt.Errorf("data keys of organization %s: %w", orgID, err)
	}
	defer rows.Close()
	var out []sealing.WrappedKey
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("data keys of organization %s: %w", orgID, err)
		}
		var w sealing.WrappedKey
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("data keys of organization %s: not a wrapped key", orgID)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("data keys of organization %s: %w", orgID, err)
	}
	return out, nil
}

// inLockedTx runs fn in a transaction holding orgID's advisory lock, after
// checking its tombstone: a destroyed organization is keyring.ErrDestroyed
// (unless allowDestroyed).
func (d *DataKeys) inLockedTx(ctx context.Context, orgID string, allowDestroyed bool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockOrgSQL, orgID); err != nil {
			return fmt.Errorf("lock the data keys of organization %s: %w", orgID, err)
		}
		if !allowDestroyed {
			var destroyed bool
			if err := tx.QueryRow(ctx, tombstoneSQL, orgID).Scan(&destroyed); err != nil {
				return fmt.Errorf("tombstone of organization %s: %w", orgID, err)
			}
			if destroyed {
				return keyring.ErrDestroyed
			}
		}
		return fn(tx)
	})
}

func marshalWrapped(w sealing.WrappedKey) (string, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("data key: %w", err)
	}
	return string(b), nil
}

// Add implements keyring.Storage.
func (d *DataKeys) Add(ctx context.Context, orgID string, w sealing.WrappedKey) ([]sealing.WrappedKey, error) {
	b, err := marshalWrapped(w)
	if err != nil {
		return nil, err
	}
	var stored []sealing.WrappedKey
	err = d.inLockedTx(ctx, orgID, false, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO data_keys (organization, version, wrapped) VALUES ($1, $2, $3)
			ON CONFLICT (organization, version) DO NOTHING`, orgID, int64(w.Version), b); err != nil {
			return fmt.Errorf("add data key of organization %s: %w", orgID, err)
		}
		stored, err = loadVersions(ctx, tx, orgID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// Destroyed implements keyring.Storage.
func (d *DataKeys) Destroyed(ctx context.Context, orgID string) (bool, error) {
	var destroyed bool
	if err := d.pool.QueryRow(ctx, tombstoneSQL, orgID).Scan(&destroyed); err != nil {
		return false, fmt.Errorf("tombstone of organization %s: %w", orgID, err)
	}
	return destroyed, nil
}

// Destroy implements keyring.Storage: the tombstone and the deletion of
// the organization's keys and its subjects' keys commit together.
func (d *DataKeys) Destroy(ctx context.Context, orgID string) error {
	return d.inLockedTx(ctx, orgID, true, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`INSERT INTO data_key_tombstones (organization) VALUES ($1) ON CONFLICT (organization) DO NOTHING`,
			`DELETE FROM data_keys WHERE organization = $1`,
			`DELETE FROM data_key_subjects WHERE organization = $1`,
		} {
			if _, err := tx.Exec(ctx, stmt, orgID); err != nil {
				return fmt.Errorf("destroy the data keys of organization %s: %w", orgID, err)
			}
		}
		return nil
	})
}

const subjectSQL = `SELECT wrapped FROM data_key_subjects WHERE organization = $1 AND handle = $2`

func scanSubject(row pgx.Row, orgID string) (sealing.WrappedKey, bool, error) {
	var (
		w sealing.WrappedKey
		b []byte
	)
	err := row.Scan(&b)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return w, false, nil
	case err != nil:
		return w, false, fmt.Errorf("subject key of organization %s: %w", orgID, err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, false, fmt.Errorf("subject key of organization %s: not a wrapped key", orgID)
	}
	return w, true, nil
}

// LoadSubject implements keyring.Storage.
func (d *DataKeys) LoadSubject(ctx context.Context, orgID, handle string) (sealing.WrappedKey, bool, error) {
	return scanSubject(d.pool.QueryRow(ctx, subjectSQL, orgID, handle), orgID)
}

// AddSubject implements keyring.Storage.
func (d *DataKeys) AddSubject(ctx context.Context, orgID, handle string, w sealing.WrappedKey) (sealing.WrappedKey, error) {
	b, err := marshalWrapped(w)
	if err != nil {
		return sealing.WrappedKey{}, err
	}
	var stored sealing.WrappedKey
	err = d.inLockedTx(ctx, orgID, false, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO data_key_subjects (organization, handle, wrapped) VALUES ($1, $2, $3)
			ON CONFLICT (organization, handle) DO NOTHING`, orgID, handle, b); err != nil {
			return fmt.Errorf("add subject key of organization %s: %w", orgID, err)
		}
		var found bool
		stored, found, err = scanSubject(tx.QueryRow(ctx, subjectSQL, orgID, handle), orgID)
		if err == nil && !found {
			err = fmt.Errorf("subject key of organization %s: not stored", orgID)
		}
		return err
	})
	return stored, err
}

// ForgetSubject implements keyring.Storage.
func (d *DataKeys) ForgetSubject(ctx context.Context, orgID, handle string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM data_key_subjects WHERE organization = $1 AND handle = $2`, orgID, handle); err != nil {
		return fmt.Errorf("forget subject key of organization %s: %w", orgID, err)
	}
	return nil
}

// Orgs implements keyring.Storage.
func (d *DataKeys) Orgs(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT organization FROM data_keys ORDER BY organization`)
	if err != nil {
		return nil, fmt.Errorf("organizations with data keys: %w", err)
	}
	orgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("organizations with data keys: %w", err)
	}
	return orgs, nil
}
