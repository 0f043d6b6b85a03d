package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections/postgres"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// TestCloseOrganization: only the platform closes, with the name as
// confirmation; afterwards the organization's members and service
// accounts are refused, its key is destroyed, its read-model rows are gone
// (also after a full rebuild), and another organization goes on.
func TestCloseOrganization(t *testing.T) {
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	member := h.addMember(org, owner, "bob", "builder")
	var sa struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
		map[string]any{"name": "ci", "permissions": []string{"bots:manage"}}).json(t, &sa)
	h.createBot(member, "Closing Canary Bot")
	kb := h.createKB(owner, "Handbook")
	h.addDoc(owner, kb, "Leave", "text/plain", "canary-close-7f3a paid leave is twenty days")
	other, otherOwner := h.createOrg("Globex", "olga")
	otherBot := h.createBot(otherOwner, "Globex Bot")
	ensureKey(t, dir, org)
	ensureKey(t, dir, other)

	path := "/v1/orgs/" + org
	h.must(http.StatusForbidden, http.MethodDelete, path, owner, map[string]string{"confirm": "Acme"})
	h.must(http.StatusUnprocessableEntity, http.MethodDelete, path, h.platform, map[string]string{"confirm": "acme"})
	h.must(http.StatusUnprocessableEntity, http.MethodDelete, path, h.platform, map[string]string{})
	h.must(http.StatusNotFound, http.MethodDelete, "/v1/orgs/0193f0aa-0000-7000-8000-000000000000", h.platform, map[string]string{"confirm": "Acme"})
	// Refusals changed nothing.
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", member, nil)
	if replicatedStack() {
		if _, err := testKeyring(t, dir).DataKeyVersion(context.Background(), org, 1); err != nil {
			t.Fatalf("the key is gone before the close: %v", err)
		}
	} else if _, err := os.Stat(filepath.Join(dir, "keys", org+".json")); err != nil {
		t.Fatalf("the key is gone before the close: %v", err)
	}

	h.must(http.StatusOK, http.MethodDelete, path, h.platform, map[string]string{"confirm": "Acme"})
	for name, tok := range map[string]string{"owner": owner, "member": member, "service account": sa.Token} {
		h.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", tok, nil)
		h.must(http.StatusUnauthorized, http.MethodPost, "/v1/bots", tok, map[string]any{"name": "again " + name, "instructions": "x"})
	}
	h.must(http.StatusConflict, http.MethodDelete, path, h.platform, map[string]string{"confirm": "Acme"})
	h.must(http.StatusConflict, http.MethodPut, path+"/quotas", h.platform, map[string]any{})
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+otherBot, otherOwner, nil)
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", otherOwner, map[string]any{"name": "Still here", "instructions": "x"})

	if replicatedStack() {
		ring := testKeyring(t, dir)
		if _, err := ring.DataKeyVersion(context.Background(), org, 1); !errors.Is(err, keyring.ErrDestroyed) {
			t.Fatalf("the closed organization's key in PostgreSQL: %v, want ErrDestroyed", err)
		}
		if _, err := ring.DataKeyVersion(context.Background(), other, 1); err != nil {
			t.Fatalf("the other organization's key: %v", err)
		}
	} else {
		if _, err := os.Stat(filepath.Join(dir, "keys", org+".json")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the closed organization's key file: %v, want gone", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "keys", org+".destroyed")); err != nil {
			t.Fatalf("no tombstone: %v", err)
		}
	}
	checkPurged(t, dir, org, other)

	// A full rebuild resurrects nothing.
	h.close()
	h = openHarness(t, dir)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", owner, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+otherBot, otherOwner, nil)
	checkPurged(t, dir, org, other)
}

// checkPurged checks, with PostgreSQL read models, that no table holds a
// row of org but the closed organization's own row and its audit skeleton
// (without the canary), while other's rows are there.
func checkPurged(t *testing.T, dataDir, org, other string) {
	t.Helper()
	if testReadModels() != "postgres" {
		return
	}
	ctx := context.Background()
	sum := sha256.Sum256([]byte(dataDir))
	schema := "e2e_" + hex.EncodeToString(sum[:8])
	conn, err := pgx.Connect(ctx, os.Getenv("PALISADE_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(orgID, sql string) int {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT set_config('palisade.org_id', $1, true)`, orgID); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, sql, orgID).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for _, table := range []string{"members", "service_accounts", "org_issuers", "bots", "knowledge_bases", "documents",
		"knowledge_chunks", "conversations", "data_sources", "analytics_jobs", "analytics_result_pages"} {
		sql := `SELECT count(*) FROM ` + schema + `.` + table + ` WHERE org_id = $1`
		if n := count(org, sql); n != 0 {
			t.Errorf("%s holds %d rows of the closed organization", table, n)
		}
	}
	if n := count(other, `SELECT count(*) FROM `+schema+`.bots WHERE org_id = $1`); n == 0 {
		t.Error("the other organization's bots were purged too")
	}
	if n := count(org, `SELECT count(*) FROM `+schema+`.audit_events WHERE org_id = $1`); n == 0 {
		t.Error("the closed organization's audit skeleton is gone")
	}
	if n := count(org, `SELECT count(*) FROM `+schema+`.audit_events WHERE org_id = $1 AND position(convert_to('canary-close-7f3a', 'UTF8') in coalesce(data, ''::bytea)) > 0`); n != 0 {
		t.Errorf("%d audit rows of the closed organization still hold content", n)
	}
	if n := count(org, `SELECT count(*) FROM `+schema+`.orgs WHERE org_id = $1 AND closed`); n != 1 {
		t.Errorf("the closed organization's row: %d closed rows", n)
	}
}

// TestKeyOfClosedOrganizationIsDestroyedAfterACrash: a crash between the
// OrganizationClosed append and the destruction of the key leaves the key
// file; the next start destroys it.
func TestKeyOfClosedOrganizationIsDestroyedAfterACrash(t *testing.T) {
	if replicatedStack() {
		t.Skip("simulates the crash with key files; TestReplicasDestroyTheKeyOfAnOrganizationClosedBeforeACrash does with PostgreSQL")
	}
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, _ := h.createOrg("Acme", "alice")
	other, otherOwner := h.createOrg("Globex", "olga")
	h.must(http.StatusOK, http.MethodGet, "/v1/org", otherOwner, nil)
	ensureKey(t, dir, org)
	ensureKey(t, dir, other)
	keyFile := filepath.Join(dir, "keys", org+".json")
	wrapped, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	h.close()
	// The crash: the log says closed, the key was never destroyed.
	if err := os.Remove(filepath.Join(dir, "keys", org+".destroyed")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, wrapped, 0o600); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "keys"))
	var others int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && e.Name() != org+".json" {
			others++
		}
	}

	h = openHarness(t, dir)
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the closed organization's key survived a restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", org+".destroyed")); err != nil {
		t.Fatalf("no tombstone after recovery: %v", err)
	}
	entries, _ = os.ReadDir(filepath.Join(dir, "keys"))
	var after int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			after++
		}
	}
	if after != others {
		t.Fatalf("%d keys of open organizations after recovery, want %d", after, others)
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/org", otherOwner, nil)
}

// ensureKey makes sure org has a data key in the deployment's keyring
// (keys are created on first use, which sealing content will be).
func ensureKey(t *testing.T, dataDir, org string) {
	t.Helper()
	if _, err := testKeyring(t, dataDir).DataKey(context.Background(), org); err != nil {
		t.Fatal(err)
	}
}

// replicatedStack says whether the suites run on the replicated stack
// (EventStoreDB and PostgreSQL read models), where the data keys are in
// PostgreSQL rather than in the data directory.
func replicatedStack() bool {
	return testReadModels() == "postgres" && os.Getenv("PALISADE_TEST_EVENTSTORE") == "esdb"
}

// testKeyring opens the keyring a harness on dataDir uses: the data
// directory's key files, or on the replicated stack the PostgreSQL tables
// of its schema; the master key is the data directory's.
func testKeyring(t *testing.T, dataDir string) *keyring.Keyring {
	t.Helper()
	master, err := sealing.LoadOrCreateMasterKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !replicatedStack() {
		ring, err := keyring.Open(filepath.Join(dataDir, keyring.Dir), master)
		if err != nil {
			t.Fatal(err)
		}
		return ring
	}
	_, appURL, schema := postgresForTest(t, dataDir)
	shared, err := postgres.OpenDataKeys(context.Background(), appURL, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shared.Close)
	return keyring.New(shared, master)
}

// TestClosedOrganizationLeavesNoPlaintextAndItsChainStillVerifies: after a
// real DELETE /v1/orgs/{id} and a shutdown, no file of the data directory
// (the log with its WAL, the chain's record, the key directory, anything
// else written there) holds the organization's content in clear, and the
// audit chain, which covers the events as stored, still verifies: the
// destroyed key changed no byte of the log.
func TestClosedOrganizationLeavesNoPlaintextAndItsChainStillVerifies(t *testing.T) {
	const canary = "canary-shred-91c4"
	dir := t.TempDir()
	h := openHarness(t, dir, func(cfg *app.Config) { cfg.AuditCheckpointInterval = 20 * time.Millisecond })
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	h.addDoc(owner, kb, "Leave", "text/plain", canary+" paid leave is twenty days")
	ensureKey(t, dir, org)

	// Wait until the chainer has chained everything the organization wrote.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var report chain.Report
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/verify", owner, nil).json(t, &report)
		if report.Pending == 0 && report.VerifiedThroughSeq > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not catch up: %+v", report)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	h.close()

	found := 0
	eachFile(t, dir, func(path string, b []byte) {
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the closed organization's content in clear", path)
		}
		if bytes.Contains(b, []byte("Handbook")) {
			found++ // a name is metadata: the control that the scan reads the log
		}
	})
	if found == 0 && os.Getenv("PALISADE_TEST_EVENTSTORE") != "esdb" {
		t.Error("control: no file of the data directory holds the knowledge base's name; the scan reads nothing")
	}

	ctx := context.Background()
	cfg := app.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if os.Getenv("PALISADE_TEST_EVENTSTORE") == "esdb" {
		cfg.EventStoreURL = esdbForTest(t, dir)
	}
	store, err := app.OpenLog(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	record, err := chain.OpenRecord(ctx, filepath.Join(dir, chain.RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	defer record.Close()
	issuer, err := identity.LoadOrCreateIssuer(dir, app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := chain.Verify(ctx, store, record, keys, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || !reports[0].OK || len(reports[0].Findings) != 0 || reports[0].VerifiedThroughSeq == 0 {
		t.Fatalf("the closed organization's chain: %+v", reports)
	}
}

// TestClosedOrganizationsVectorsAndQuotaEntryAreForgotten: closing an
// organization deletes its chunk vectors from the durable embedding store
// (derived from its content and not sealed, so the destroyed key does not
// cover them) and drops its entry from the quota book, while another
// organization keeps both.
func TestClosedOrganizationsVectorsAndQuotaEntryAreForgotten(t *testing.T) {
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	other, otherOwner := h.createOrg("Globex", "olga")
	for _, o := range []struct{ token, text string }{
		{owner, "acme expense policy: receipts within thirty days"},
		{otherOwner, "globex travel policy: economy class below six hours"},
	} {
		kb := h.createKB(o.token, "Policies")
		if doc := h.addDoc(o.token, kb, "Policy", "text/plain", o.text); doc.State != "ready" {
			t.Fatalf("document state %q, want ready", doc.State)
		}
	}
	ensureKey(t, dir, org)
	count := storedVectors(t, dir)
	for _, id := range []string{org, other} {
		if n := count(id); n == 0 {
			t.Fatalf("control: the embedding store holds no vector of %s before the close", id)
		}
		if _, ok := h.app.Quotas.State().Orgs[id]; !ok {
			t.Fatalf("control: the quota book has no entry for %s before the close", id)
		}
	}

	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	deadline := time.Now().Add(10 * time.Second)
	for count(org) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the closed organization still has %d vectors in the embedding store", count(org))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		_, ok := h.app.Quotas.State().Orgs[org]
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quota book still has an entry for the closed organization")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(other); n == 0 {
		t.Error("the other organization's vectors went with the close")
	}
	if _, ok := h.app.Quotas.State().Orgs[other]; !ok {
		t.Error("the other organization's quota entry went with the close")
	}
}

// storedVectors returns a function that counts an organization's rows in
// the durable embedding store of the harness on dataDir: the SQLite file of
// the data directory, or the embedding_cache table of its PostgreSQL schema.
func storedVectors(t *testing.T, dataDir string) func(org string) int {
	t.Helper()
	ctx := context.Background()
	if testReadModels() == "postgres" {
		owner, _, schema := postgresForTest(t, dataDir)
		conn, err := pgx.Connect(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return func(org string) int {
			// The table's policy admits the session's organization only.
			if _, err := conn.Exec(ctx, `SELECT set_config('palisade.org_id', $1, false)`, org); err != nil {
				t.Fatal(err)
			}
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM `+
				pgx.Identifier{schema, "embedding_cache"}.Sanitize()+` WHERE org_id = $1`, org).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "embeddings.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(org string) int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM embeddings WHERE org_id = ?`, org).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestClosedOrganizationLeavesNoPlainContentHash: a plain SHA-256 of short
// content confirms a guess of it, so once an organization is closed no
// copy may hold one: not the log as stored (the data directory's files,
// or the log read back sealed), not the log opened as palisade audit
// replay reads it, not the audit read model (PostgreSQL's rows, or the
// memory models' snapshot), not the Kafka topics (downstream and log), not
// an audit export taken before the close, and no document id derived from
// one. The record still shows each event, its hashes keyed.
func TestClosedOrganizationLeavesNoPlainContentHash(t *testing.T) {
	dir := t.TempDir()
	brokers := []string(nil)
	h := openHarness(t, dir, func(cfg *app.Config) {
		if cfg.KafkaBrokers == nil {
			cfg.KafkaBrokers = kafkaForTest(t)
		}
		brokers = cfg.KafkaBrokers
	})
	org, owner := h.createOrg("Acme", "alice")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	kb := h.createKB(owner, "Handbook")
	values := []string{"Raise", "salary 90k", "about Handbook", "Bonus", "bonus 5k", "salary?",
		"Answer from the handbook.", "Questions", "what is my salary?"}
	if doc := h.addDoc(owner, kb, "Raise", "text/plain", "salary 90k"); doc.State != "ready" {
		t.Fatalf("document %+v not ingested", doc)
	}
	// A command with an Idempotency-Key records the hash of its body.
	body := []byte(`{"title":"Bonus","content_type":"text/plain","content":"bonus 5k"}`)
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner, body, "Idempotency-Key", "close-hash-1")
	values = append(values, string(body))
	h.search(owner, map[string]any{"query": "salary?"})
	bot := h.createBotWith(owner, "Helper", "Answer from the handbook.", map[string]any{"tools": []string{"search"}})
	answer, _ := h.ask(owner, h.startConversation(owner, bot), "what is my salary?")
	values = append(values, answer.Message.Content)
	for _, c := range answer.Message.ToolCalls {
		values = append(values, c.Arguments)
	}
	plain := map[string]string{} // hex SHA-256 → the value it names
	for _, v := range values {
		sum := sha256.Sum256([]byte(v))
		plain[hex.EncodeToString(sum[:])] = v
	}
	// The id the document would have if it were derived from the plain hash.
	legacy := uuid.NewSHA1(uuid.NameSpaceOID, []byte(org+"/"+kb+"/"+sha256Hex("salary 90k"))).String()
	plain[legacy] = "the id derived from the plain hash of salary 90k"
	check := func(where string, b []byte) {
		t.Helper()
		for hash, v := range plain {
			if bytes.Contains(b, []byte(hash)) {
				t.Errorf("%s holds %s, the plain hash of %q", where, hash, v)
			}
		}
	}

	// An export an auditor (audit:read) takes while the organization lives.
	export := h.must(http.StatusOK, http.MethodGet, "/v1/audit/export", auditor, nil).body
	keyed := ""
	for _, line := range bytes.Split(export, []byte("\n")) {
		var e struct {
			Type string
			Data struct {
				ContentHash string `json:"content_hash"`
				Content     struct{ SHA256 string }
			}
		}
		if json.Unmarshal(line, &e) == nil && e.Type == "DocumentAdded" && keyed == "" {
			keyed = e.Data.ContentHash
			if len(keyed) != 64 || e.Data.Content.SHA256 != keyed {
				t.Errorf("the export's DocumentAdded: %s", line)
			}
		}
	}
	if keyed == "" {
		t.Fatalf("control: the export holds no DocumentAdded: %s", export)
	}

	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	downstream := consumeUntilClosed(t, brokers)
	check("the audit export taken before the close", export)
	check("the Kafka topics", downstream)
	if !bytes.Contains(downstream, []byte(keyed)) {
		t.Error("control: the Kafka topics do not carry the keyed content hash")
	}
	if testReadModels() == "postgres" {
		checkAuditRows(t, dir, org, keyed, plain)
	}
	h.close()

	// The data directory: the embedded log with its WAL, the memory read
	// models' snapshot, the chain's record, the embedding store.
	eachFile(t, dir, func(path string, b []byte) {
		check(path, b)
		if filepath.Base(path) == "readmodels.snapshot" && !bytes.Contains(b, []byte(keyed)) {
			t.Error("control: the snapshot of the memory read models does not hold the audit record's keyed hash")
		}
	})

	// The log as stored and as palisade audit replay opens it.
	ctx := context.Background()
	cfg := app.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if os.Getenv("PALISADE_TEST_EVENTSTORE") == "esdb" {
		cfg.EventStoreURL = esdbForTest(t, dir)
	}
	for name, open := range map[string]func(context.Context, app.Config) (eventstore.Store, error){
		"the log as stored": app.OpenLog, "the log opened for audit replay": app.OpenStore,
	} {
		store, err := open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org}, 10_000)
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]int{}
		for _, env := range envs {
			b, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			check(name, b)
			types[env.Type]++
			if env.Type == "DocumentAdded" && bytes.Contains(env.Data, []byte(`"content_hash":"`+keyed+`"`)) {
				types["DocumentAdded with its keyed hash"]++
			}
		}
		for _, typ := range []string{"DocumentAdded with its keyed hash", "DocumentChunked", "KnowledgeSearched", "TurnStarted", "AnswerRecorded",
			"IdempotentResponseRecorded", "OrganizationClosed"} {
			if types[typ] == 0 {
				t.Errorf("%s: no %s of the closed organization (%v)", name, typ, types)
			}
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// consumeUntilClosed reads the downstream category topics and the log
// topic from the start until each has carried an OrganizationClosed, and
// returns every byte they carried (topic, key, headers, value).
func consumeUntilClosed(t *testing.T, brokers []string) []byte {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics("palisade.doc", "palisade.search", "palisade.bot", "palisade.kb", "palisade.org", "palisade.conversation",
			"palisade.idempotency", "palisade.security", "palisade.job", "palisade-log"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []byte
	seen := map[string]bool{}
	for !(seen["palisade.org"] && seen["palisade-log"]) {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("Kafka: saw OrganizationClosed on %v only", seen)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			all = append(append(append(all, r.Topic...), r.Key...), r.Value...)
			for _, hd := range r.Headers {
				all = append(append(all, hd.Key...), hd.Value...)
				if hd.Key == eventstore.MetaType && string(hd.Value) == "OrganizationClosed" {
					seen[r.Topic] = true
				}
			}
		})
	}
	return all
}

// checkAuditRows checks, once the audit read model in PostgreSQL has
// applied the close, that none of the organization's audit rows holds a
// plain hash, while they still hold the keyed one.
func checkAuditRows(t *testing.T, dataDir, org, keyed string, plain map[string]string) {
	t.Helper()
	ctx := context.Background()
	owner, _, schema := postgresForTest(t, dataDir)
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT set_config('palisade.org_id', $1, false)`, org); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "audit_events"}.Sanitize()
	count := func(needle string) int {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE org_id = $1 AND position(convert_to($2, 'UTF8') in coalesce(data, ''::bytea)) > 0`, org, needle).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(`"content":"salary 90k"`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the audit read model did not apply the close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for hash, v := range plain {
		if n := count(hash); n != 0 {
			t.Errorf("%d audit rows hold %s, the plain hash of %q", n, hash, v)
		}
	}
	if count(keyed) == 0 {
		t.Error("control: no audit row holds the keyed content hash")
	}
}
