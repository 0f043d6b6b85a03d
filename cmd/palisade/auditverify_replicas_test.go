package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections/postgres"
)

// TestAuditVerifyReadsTheSharedRecord: on the replicated stack the audit
// chain's record is the one in PostgreSQL that the replicas share, not a
// file of a data directory: audit verify given --eventstore-url and
// --postgres-url reads that one, and verifies the log against it.
func TestAuditVerifyReadsTheSharedRecord(t *testing.T) {
	ctx := context.Background()
	args, owner, schema := postgresArgs(t)
	appURL := args[3]
	if err := postgres.Migrate(ctx, owner, schema); err != nil {
		t.Fatal(err)
	}
	srv := esdbtest.New(t)
	dataDir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := app.OpenLog(ctx, app.Config{DataDir: dataDir, EventStoreURL: srv.URL(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	org := uuid.NewString()
	appendBots(t, store, org, 5)
	logID, err := store.(interface {
		LogID(context.Context) (string, error)
	}).LogID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := postgres.Open(ctx, appURL, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	issuer, err := identity.LoadOrCreateIssuer(dataDir, app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	chainer := chain.NewChainer(store, pg.ChainRecord(logID), issuer, nil, logger)
	chainer.Interval = 0
	if _, err := chainer.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, chain.RecordFile)); !os.IsNotExist(err) {
		t.Fatalf("a record file in the data directory: %v", err)
	}

	var out, stderr bytes.Buffer
	err = run(ctx, []string{"audit", "verify", "--data-dir", dataDir, "--log-level", "error",
		"--eventstore-url", srv.URL(), "--postgres-url", appURL, "--postgres-schema", schema}, &out, &stderr)
	if err != nil {
		t.Fatalf("audit verify: %v\n%s", err, stderr.String())
	}
	var reports []chain.Report
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r chain.Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		reports = append(reports, r)
	}
	if len(reports) != 1 || reports[0].OrgID != org || !reports[0].OK || reports[0].VerifiedThroughSeq != 5 || reports[0].Checkpoints == 0 {
		t.Fatalf("reports %+v", reports)
	}
}
