package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
)

// secretForms are the ways a password could show up in stored or sent
// bytes: in clear, in hex, and in base64 (standard and URL alphabets, at
// each of the three alignments it could have inside a longer encoded
// value, without the characters shared with its neighbours).
func secretForms(secret string) []string {
	forms := []string{secret, hex.EncodeToString([]byte(secret)), strings.ToUpper(hex.EncodeToString([]byte(secret)))}
	for shift := range 3 {
		raw := append(make([]byte, shift), secret...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := strings.TrimRight(enc.EncodeToString(raw), "=")
			start := 0
			if shift > 0 {
				start = 4 // the group holding the shift's bytes
			}
			forms = append(forms, s[start:len(s)-4])
		}
	}
	return forms
}

// scanSecrets fails for every form of every secret found in data.
func scanSecrets(t *testing.T, where string, data []byte, secrets []string) {
	t.Helper()
	for _, secret := range secrets {
		for _, form := range secretForms(secret) {
			if i := bytes.Index(data, []byte(form)); i >= 0 {
				t.Errorf("%s holds the password %q (as %q): …%q…", where, secret, form, data[max(0, i-60):min(len(data), i+len(form)+60)])
			}
		}
	}
}

// TestDataSourcePasswordsNeverLeak gives sources canary passwords (at
// creation and through PATCH), tests them (one against a database whose
// error quotes the password), reads everything back, and scans every HTTP
// answer, the log output, every file of the data directory (the event log
// above all), the read models (PostgreSQL's tables as the owner role, when
// the suite runs on them) and, over Kafka, every message of every topic,
// for the passwords in clear, hex and base64. The sealed form is fine.
func TestDataSourcePasswordsNeverLeak(t *testing.T) {
	t.Parallel()
	dbs := &fakeDatabases{}
	logs := &lockedBuffer{}
	dataDir := t.TempDir()
	var brokers []string
	var pgOwner, pgSchema string
	h := openHarness(t, dataDir, func(cfg *app.Config) {
		cfg.SourceTester = dbs
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if len(cfg.KafkaBrokers) > 0 {
			brokers = kafkaForTest(t)
			cfg.KafkaBrokers = brokers
		}
		pgOwner, pgSchema = cfg.PostgresOwnerURL, cfg.PostgresSchema
	})
	orgA, owner := h.createOrg("Alpha", "alice")
	analyst := h.addMember(orgA, owner, "anna", "analyst")
	orgB, ownerB := h.createOrg("Bravo", "bob")

	rnd := isoRand(t)
	canaries := []string{"CANARY-PW-create-" + rnd, "CANARY-PW-patch-" + rnd, "CANARY-PW-leaky-" + rnd, "CANARY-PW-bravo-" + rnd}
	var answers [][]byte
	keep := func(r response) response { answers = append(answers, r.body); return r }
	create := func(token, name, host, password string) string {
		var v dsView
		keep(h.must(http.StatusCreated, http.MethodPost, "/v1/data-sources", token, map[string]any{
			"name": name, "kind": "postgres", "allowed_tables": []string{"sales"},
			"connection": map[string]any{"host": host, "database": "sales", "user": "reader", "password": password},
		})).json(t, &v)
		return v.ID
	}
	good := create(owner, "Good", "db.ok", canaries[0])
	leaky := create(owner, "Leaky", "db.leaky", canaries[2])
	bravo := create(ownerB, "Bravo's", "db.ok", canaries[3])
	keep(h.must(http.StatusOK, http.MethodPatch, "/v1/data-sources/"+good, owner, map[string]any{
		"connection": map[string]any{"host": "db.ok", "database": "sales", "user": "reader", "password": canaries[1]}}))
	// Refused requests carrying a password: their errors must not echo it.
	keep(h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/data-sources", owner, map[string]any{
		"name": "Bad", "kind": "sqlite", "allowed_tables": []string{"t"}, "connection": map[string]any{"path": "x.db", "password": canaries[0]}}))
	keep(h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/data-sources", owner, map[string]any{
		"name": "Bad", "kind": "postgres", "allowed_tables": []string{"t"},
		"connection": map[string]any{"host": "db ok", "database": "sales", "user": "reader", "password": canaries[0]}}))
	keep(h.must(http.StatusBadRequest, http.MethodPost, "/v1/data-sources", owner, []byte(
		`{"name":"Bad","kind":"postgres","allowed_tables":["t"],"connection":{"host":"db.ok","database":"d","user":"u","password":["`+canaries[0]+`"]}}`)))
	keep(h.must(http.StatusNotFound, http.MethodPatch, "/v1/data-sources/"+good, ownerB, map[string]any{
		"connection": map[string]any{"host": "db.ok", "database": "sales", "user": "reader", "password": canaries[3]}}))

	var tested dsTest
	keep(h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+good+"/test", owner, nil)).json(t, &tested)
	if !tested.OK {
		t.Fatalf("the good source's test failed: %s", tested.Error)
	}
	keep(h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+leaky+"/test", owner, nil)).json(t, &tested)
	if tested.OK || !strings.Contains(tested.Error, "password authentication failed") || !strings.Contains(tested.Error, "[redacted]") {
		t.Fatalf("the leaky source's test = %+v, want its error with the password redacted", tested)
	}
	keep(h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+bravo+"/test", ownerB, nil))
	// Control: what was sealed opens to what was given.
	opened := strings.Join(dbs.opened(), " ")
	for _, c := range canaries[1:] {
		if !strings.Contains(opened, c) {
			t.Fatalf("control: the tester was never handed %q", c)
		}
	}
	keep(h.must(http.StatusOK, http.MethodPut, "/v1/data-sources/"+good+"/grants", owner, map[string]any{"grants": []map[string]any{
		{"subject": "user:anna", "permissions": []string{"datasources:query"}}}}))
	// Every read there is, as every reader.
	for _, tok := range []string{owner, analyst} {
		keep(h.must(http.StatusOK, http.MethodGet, "/v1/data-sources?limit=500", tok, nil))
	}
	for _, id := range []string{good, leaky} {
		keep(h.must(http.StatusOK, http.MethodGet, "/v1/data-sources/"+id, owner, nil))
	}
	keep(h.must(http.StatusOK, http.MethodGet, "/v1/data-sources/"+good, analyst, nil))
	keep(h.must(http.StatusOK, http.MethodGet, "/v1/data-sources/"+bravo, ownerB, nil))
	for _, tok := range []string{owner, ownerB} {
		keep(h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?limit=500", tok, nil))
	}
	keep(h.must(http.StatusNoContent, http.MethodDelete, "/v1/data-sources/"+leaky, owner, nil))

	// Control: the scan finds a canary where one is.
	probe := []byte("xx" + base64.StdEncoding.EncodeToString([]byte("ab"+canaries[0]+"cd")) + "yy")
	if !findsAny(probe, canaries[0]) {
		t.Fatal("control: the scan misses a base64-encoded password")
	}

	for i, body := range answers {
		scanSecrets(t, "HTTP answer "+strconv.Itoa(i), body, canaries)
	}
	if len([]byte(logs.String())) == 0 {
		t.Fatal("control: the app logged nothing")
	}
	scanSecrets(t, "the log output", []byte(logs.String()), canaries)

	// The data directory, event log included, as raw bytes: the sealed
	// passwords are there (inside sealed content), the passwords are not.
	sealedSeen := false
	h.close() // flush and close the log first
	eachFile(t, dataDir, func(path string, data []byte) {
		sealedSeen = sealedSeen || bytes.Contains(data, []byte(`{"sealed":"`))
		scanSecrets(t, "file "+path, data, canaries)
	})
	// On EventStoreDB the log is not in the data directory.
	if !sealedSeen && os.Getenv("PALISADE_TEST_EVENTSTORE") != "esdb" {
		t.Error("control: no sealed password in the data directory, so the event log was not read")
	}

	if pgOwner != "" {
		scanSecrets(t, "the PostgreSQL read models", dumpReadModels(t, pgOwner, pgSchema, orgA, orgB), canaries)
	}
	if brokers != nil {
		scanSecrets(t, "the Kafka topics", readKafka(t, brokers), canaries)
	}
}

func findsAny(data []byte, secret string) bool {
	for _, form := range secretForms(secret) {
		if bytes.Contains(data, []byte(form)) {
			return true
		}
	}
	return false
}

// dumpReadModels returns every row of every table of the schema, read as
// the owner role once per organization (row-level security is forced on
// the owner too).
func dumpReadModels(t *testing.T, ownerURL, schema string, orgs ...string) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatalf("dump read models: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables of %s: %v, %v", schema, tables, err)
	}
	var out bytes.Buffer
	sawSources := false
	for _, org := range orgs {
		for _, table := range tables {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('palisade.org_id', $1, true)`, org); err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{schema, table}.Sanitize()+` t`)
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			_ = tx.Rollback(ctx)
			if table == "data_sources" && len(lines) > 0 {
				sawSources = true
			}
			for _, l := range lines {
				out.WriteString(table + ": " + l + "\n")
			}
		}
	}
	if !sawSources {
		t.Fatal("control: the dump holds no data source row")
	}
	return out.Bytes()
}

// readKafka returns every record (topic, key, headers, value) of every
// topic, once the data source events are on the log topic and on their
// category topic.
func readKafka(t *testing.T, brokers []string) []byte {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeRegex(), kgo.ConsumeTopics("palisade.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []byte
	seen := map[string]bool{}
	for !(seen["palisade-log DataSourceDeleted"] && seen["palisade.datasource DataSourceDeleted"]) {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("Kafka: saw only %v", seen)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			all = append(append(append(all, r.Topic...), r.Key...), r.Value...)
			for _, hd := range r.Headers {
				all = append(append(all, hd.Key...), hd.Value...)
				if hd.Key == eventstore.MetaType {
					seen[r.Topic+" "+string(hd.Value)] = true
				}
			}
		})
	}
	return all
}
