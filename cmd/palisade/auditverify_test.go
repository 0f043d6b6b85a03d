package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
)

// TestAuditVerify chains a log in a data directory as serve would, then
// runs audit verify on it: clean, it prints one passing report per
// organization and succeeds; after one byte of one event's data is
// changed in the SQLite file, it names that event and fails; with a JWKS
// of another deployment, every checkpoint's signature fails.
func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	orgA, orgB := uuid.NewString(), uuid.NewString()
	idsA := appendBots(t, store, orgA, 5)
	appendBots(t, store, orgB, 3)
	issuer, err := identity.LoadOrCreateIssuer(dataDir, app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	record, err := chain.OpenRecord(ctx, filepath.Join(dataDir, chain.RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	chainer := chain.NewChainer(store, record, issuer, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	chainer.Interval = 0
	if _, err := chainer.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	record.Close()
	store.Close()

	verify := func(args ...string) ([]chain.Report, error) {
		var out, stderr bytes.Buffer
		err := run(ctx, append([]string{"audit", "verify", "--data-dir", dataDir, "--log-level", "error"}, args...), &out, &stderr)
		var reports []chain.Report
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var r chain.Report
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Bytes(), err)
			}
			reports = append(reports, r)
		}
		return reports, err
	}
	reports, err := verify()
	if err != nil || len(reports) != 2 || !reports[0].OK || !reports[1].OK {
		t.Fatalf("clean log: %+v, %v", reports, err)
	}
	if reports, err = verify("--org", orgB); err != nil || len(reports) != 1 || reports[0].OrgID != orgB || reports[0].VerifiedThroughSeq != 3 {
		t.Fatalf("--org: %+v, %v", reports, err)
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE events SET data = CAST(replace(CAST(data AS TEXT), 'replayed', 'replayee') AS BLOB) WHERE id = ?`, idsA[2][:]); err != nil {
		t.Fatal(err)
	}
	db.Close()
	reports, err = verify()
	if !errors.Is(err, errFindings) {
		t.Fatalf("tampered log: err %v, want errFindings", err)
	}
	for _, r := range reports {
		switch r.OrgID {
		case orgA:
			if r.OK || len(r.Findings) != 1 || r.Findings[0].Kind != chain.KindAltered || r.Findings[0].EventID != idsA[2].String() || r.Findings[0].Seq != 3 {
				t.Errorf("tampered organization: %+v", r)
			}
		case orgB:
			if !r.OK {
				t.Errorf("untouched organization: %+v", r)
			}
		}
	}

	other, err := identity.LoadOrCreateIssuer(t.TempDir(), app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := other.JWKS()
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	reports, err = verify("--org", orgB, "--jwks", jwksFile)
	if !errors.Is(err, errFindings) || len(reports) != 1 || reports[0].Findings[0].Kind != chain.KindBadSignature {
		t.Errorf("another deployment's JWKS: %+v, %v", reports, err)
	}
	if _, err := verify("--data-dir", t.TempDir()); err == nil {
		t.Error("a data directory without a record verified")
	}
}
