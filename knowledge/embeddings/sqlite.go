package embeddings

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/palisadehq/palisade/domain/access"
)

// SQLite keeps embeddings in one SQLite file (modernc.org/sqlite, WAL,
// synchronous=FULL), readable and writable only by its owner. It is safe
// for concurrent use; one process should have a file open at a time.
type SQLite struct {
	db *sql.DB
}

const sqliteSchema = `CREATE TABLE IF NOT EXISTS embeddings (
	org_id TEXT NOT NULL,
	model  TEXT NOT NULL,
	hash   TEXT NOT NULL,
	vector BLOB NOT NULL,
	PRIMARY KEY (org_id, model, hash)
) WITHOUT ROWID`

// sqliteBatch bounds the hashes of one SELECT (SQLite's default limit of
// bound parameters is 32766).
const sqliteBatch = 500

// OpenSQLite opens (creating it with mode 0600 if needed) the store at path.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open embedding store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open embedding store: %w", err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(ON)")
	if err != nil {
		return nil, fmt.Errorf("open embedding store: %w", err)
	}
	// One connection: writes are serialized anyway, and a single
	// connection never meets SQLITE_BUSY from itself.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open embedding store %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the file.
func (s *SQLite) Close() error { return s.db.Close() }

// Get returns the stored vectors of hashes under model, by hash; hashes
// without one are absent from the map.
func (s *SQLite) Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float32, len(hashes))
	for batch := range slices.Chunk(hashes, sqliteBatch) {
		args := make([]any, 0, len(batch)+2)
		args = append(args, org, model)
		for _, h := range batch {
			args = append(args, h)
		}
		query := `SELECT hash, vector FROM embeddings WHERE org_id = ? AND model = ? AND hash IN (?` +
			strings.Repeat(", ?", len(batch)-1) + `)`
		if err := s.scan(ctx, out, query, args); err != nil {
			return nil, fmt.Errorf("embedding store: %w", err)
		}
	}
	return out, nil
}

func (s *SQLite) scan(ctx context.Context, out map[string][]float32, query string, args []any) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hash string
			blob []byte
		)
		if err := rows.Scan(&hash, &blob); err != nil {
			return err
		}
		v, err := decodeVector(blob)
		if err != nil {
			return fmt.Errorf("vector of %s: %w", hash, err)
		}
		out[hash] = v
	}
	return rows.Err()
}

// Put stores vectors under model, by hash, replacing what was stored, in
// one durable transaction.
func (s *SQLite) Put(ctx context.Context, scope access.Scope, model string, vectors map[string][]float32) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	for h, v := range vectors {
		if len(v) == 0 {
			return fmt.Errorf("%w: %s", ErrEmptyVector, h)
		}
	}
	if len(vectors) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("embedding store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO embeddings (org_id, model, hash, vector) VALUES (?, ?, ?, ?)
		ON CONFLICT (org_id, model, hash) DO UPDATE SET vector = excluded.vector`)
	if err != nil {
		return fmt.Errorf("embedding store: %w", err)
	}
	defer stmt.Close()
	for h, v := range vectors {
		if _, err := stmt.ExecContext(ctx, org, model, h, encodeVector(v)); err != nil {
			return fmt.Errorf("embedding store: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("embedding store: %w", err)
	}
	return nil
}

// PurgeOrg removes every vector of the scope's organization, under every
// model, durably. The freed pages are zeroed (secure_delete) so that the
// vectors do not linger in the file.
func (s *SQLite) PurgeOrg(ctx context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM embeddings WHERE org_id = ?`, org); err != nil {
		return fmt.Errorf("embedding store: forget %s: %w", org, err)
	}
	return nil
}

// encodeVector writes v as little-endian IEEE 754 float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) ([]float32, error) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, errors.New("malformed vector")
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
