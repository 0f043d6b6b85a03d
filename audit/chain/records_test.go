package chain_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/projections/postgres"
)

// chainRecord is what both adapters of the record offer: the port, and
// the heads for the tests to look at.
type chainRecord interface {
	chain.RecordWriter
	chain.RecordReader
	Heads(ctx context.Context) (map[string]chain.Head, error)
}

// recordBackend opens a fresh, empty record of one adapter. The tests of
// this package run over each: the contract both must keep.
type recordBackend struct {
	name string
	open func(t *testing.T) *openRecord
}

// openRecord is one record, and the means to reopen it (as a restarted
// server would) and to edit it behind the chainer's back (as an operator
// with access to its database could).
type openRecord struct {
	record chainRecord
	// reopen closes the record and opens the same one again.
	reopen func(t *testing.T) chainRecord
	// setHash, setSignature and deleteEntry edit the record directly.
	setHash      func(t *testing.T, org string, seq uint64, hash []byte)
	setSignature func(t *testing.T, org string, seq uint64, sig []byte)
	deleteEntry  func(t *testing.T, org string, seq uint64)
}

func recordBackends() []recordBackend {
	return []recordBackend{
		{"sqlite", openSQLiteRecord},
		{"postgres", openPostgresRecord},
	}
}

func openSQLiteRecord(t *testing.T) *openRecord {
	path := filepath.Join(t.TempDir(), chain.RecordFile)
	open := func(t *testing.T) chainRecord {
		t.Helper()
		r, err := chain.OpenRecord(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	o := &openRecord{record: open(t)}
	o.reopen = func(t *testing.T) chainRecord {
		if err := o.record.(*chain.Record).Close(); err != nil {
			t.Fatal(err)
		}
		o.record = open(t)
		return o.record
	}
	exec := func(t *testing.T, query string, args ...any) {
		t.Helper()
		res, err := openRecordFile(t, path).Exec(query, args...)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s %v: %d rows", query, args, n)
		}
	}
	o.setHash = func(t *testing.T, org string, seq uint64, hash []byte) {
		exec(t, `UPDATE chain_events SET hash = ? WHERE org = ? AND seq = ?`, hash, org, seq)
	}
	o.setSignature = func(t *testing.T, org string, seq uint64, sig []byte) {
		exec(t, `UPDATE chain_checkpoints SET signature = ? WHERE org = ? AND seq = ?`, sig, org, seq)
	}
	o.deleteEntry = func(t *testing.T, org string, seq uint64) {
		exec(t, `DELETE FROM chain_events WHERE org = ? AND seq = ?`, org, seq)
	}
	return o
}

// postgresURLs returns the owner's and the application role's URLs of the
// test database. The PostgreSQL run of the contract fails, not skips,
// without one: make test provisions it (scripts/provision-postgres).
func postgresURLs(t *testing.T) (owner, app string) {
	t.Helper()
	owner = os.Getenv("PALISADE_TEST_POSTGRES_URL")
	if owner == "" {
		t.Fatal("PALISADE_TEST_POSTGRES_URL is not set: the record's PostgreSQL adapter is tested against it (scripts/provision-postgres prints it)")
	}
	app = os.Getenv("PALISADE_TEST_POSTGRES_APP_URL")
	if app == "" {
		u, err := url.Parse(owner)
		if err != nil {
			t.Fatalf("PALISADE_TEST_POSTGRES_URL: %v", err)
		}
		u.User = url.UserPassword(postgres.DefaultAppRole, postgres.DefaultAppRole)
		app = u.String()
	}
	return owner, app
}

// openPostgresRecord migrates a schema of its own (dropped at the end)
// and opens the record there as the application role, as a replica does.
func openPostgresRecord(t *testing.T) *openRecord {
	ctx := context.Background()
	ownerURL, appURL := postgresURLs(t)
	schema := fmt.Sprintf("chain_%016x", rand.Uint64())
	ownerCfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	ownerCfg.RuntimeParams["search_path"] = schema
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), ownerURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := postgres.Migrate(ctx, ownerURL, schema); err != nil {
		t.Fatalf("migrate %s: %v", schema, err)
	}
	open := func(t *testing.T) chainRecord {
		t.Helper()
		store, err := postgres.Open(ctx, appURL, schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		return store.ChainRecord("test-log")
	}
	o := &openRecord{record: open(t)}
	o.reopen = func(t *testing.T) chainRecord {
		o.record = open(t)
		return o.record
	}
	// The owner edits, setting the organization first: row-level
	// security is forced on the owner too.
	exec := func(t *testing.T, org, query string, args ...any) {
		t.Helper()
		conn, err := pgx.ConnectConfig(ctx, ownerCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT set_config('palisade.org_id', $1, true)`, org); err != nil {
			t.Fatal(err)
		}
		tag, err := tx.Exec(ctx, query, append([]any{org}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() != 1 {
			t.Fatalf("%s %v: %d rows", query, args, tag.RowsAffected())
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	o.setHash = func(t *testing.T, org string, seq uint64, hash []byte) {
		exec(t, org, `UPDATE audit_chain_events SET hash = $3 WHERE org_id = $1 AND seq = $2`, int64(seq), hash)
	}
	o.setSignature = func(t *testing.T, org string, seq uint64, sig []byte) {
		exec(t, org, `UPDATE audit_chain_checkpoints SET signature = $3 WHERE org_id = $1 AND seq = $2`, int64(seq), sig)
	}
	o.deleteEntry = func(t *testing.T, org string, seq uint64) {
		exec(t, org, `DELETE FROM audit_chain_events WHERE org_id = $1 AND seq = $2`, int64(seq))
	}
	return o
}
