package postgres

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultOrganizationIndexMin is the fewest chunks with which an
// organization gets an HNSW index of its own: the most a search of an
// organization with one ranks by an exact scan, so that every organization
// whose searches go through an HNSW index walks its own.
const DefaultOrganizationIndexMin = indexedExactScanMaxChunks

// orgIndexPrefix names the per-organization indexes; the first
// orgIndexHashDigits hex digits of the organization id's SHA-256 complete
// the name (orgIndexName; searchSQL computes the same name to know whether
// an organization has its index).
const (
	orgIndexPrefix     = "knowledge_chunks_embedding_org_"
	orgIndexHashDigits = "16"
)

// OrganizationIndexes reports what one IndexOrganizations pass did.
type OrganizationIndexes struct {
	// Skipped is true when another session was maintaining the indexes of
	// the schema: this pass did nothing.
	Skipped bool
	// Created and Dropped name the indexes built and dropped, Kept counts
	// those left as they were.
	Created, Dropped []string
	Kept             int
}

// IndexOrganizations gives every organization with at least minChunks chunks an
// HNSW index of its own over its embeddings (a partial index, WHERE org_id
// is that organization), and drops that index once the organization has
// fallen below minChunks/2 chunks or is gone. It runs as the owner role, on one
// connection of its own, and does nothing if another session of any
// replica is already at it (an advisory lock per schema).
//
// Why: one HNSW graph over every organization serves a search restricted
// to one organization by walking on until enough of its chunks pass the
// filter. For an organization of a few percent of the table the walk
// visits tens of thousands of other organizations' tuples (about 150 ms a
// search at 1,000,000 chunks; BENCHMARKS.md). A search is planned afresh
// with its organization as a constant (searchSettingsSQL), so the planner
// sees that the organization's own index holds every row it may return,
// and walks that smaller graph instead. Organizations below minChunks are ranked
// by an exact scan and need none; the index over the whole table stays
// for them, and for any organization between two passes.
//
// Indexes are built with CREATE INDEX CONCURRENTLY, so writes go on while
// a large organization's graph is built (minutes for hundreds of thousands
// of chunks); a build that failed leaves an invalid index, which the next
// pass drops and builds again. Each index costs its organization's writes
// one more graph insert per chunk.
//
// Counting the chunks of every organization reads across organizations,
// which forced row-level security refuses the owner too: the session sets
// palisade.maintenance, which migration 00020's policy honours for the
// owner role alone, and reads nothing but counts.
func IndexOrganizations(ctx context.Context, ownerURL, schema string, minChunks int) (OrganizationIndexes, error) {
	var report OrganizationIndexes
	if minChunks < 2 {
		return report, fmt.Errorf("organization indexes: at least 2 chunks, not %d", minChunks)
	}
	schema, err := schemaOf(schema)
	if err != nil {
		return report, err
	}
	cfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		return report, fmt.Errorf("organization indexes: parse URL: %w", err)
	}
	cfg.RuntimeParams["search_path"] = searchPath(schema)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return report, fmt.Errorf("organization indexes: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	lockID := advisoryLockID(schema + "/organization-indexes")
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID).Scan(&locked); err != nil {
		return report, fmt.Errorf("organization indexes: lock schema %s: %w", schema, err)
	}
	if !locked {
		report.Skipped = true
		return report, nil
	}
	// Closing the connection releases the lock as well.
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	}()

	// Without migration 00020's policy the count below would see no
	// chunk and drop every index: a schema behind its migrations is an
	// error, not an empty one.
	var migrated bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = $1
		AND tablename = 'knowledge_chunks' AND policyname = 'organization_index_maintenance')`, schema).Scan(&migrated); err != nil {
		return report, fmt.Errorf("organization indexes: %w", err)
	}
	if !migrated {
		return report, fmt.Errorf("organization indexes: schema %s is not migrated to version 20 (run palisade migrate)", schema)
	}
	sizes, err := organizationSizes(ctx, conn, (minChunks+1)/2)
	if err != nil {
		return report, err
	}
	existing, err := organizationIndexes(ctx, conn, schema)
	if err != nil {
		return report, err
	}
	byName := make(map[string]orgSize, len(sizes))
	for _, s := range sizes {
		byName[orgIndexName(s.org)] = s
	}
	for name, valid := range existing {
		if _, keep := byName[name]; keep && valid {
			report.Kept++
			continue
		}
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{schema, name}.Sanitize()); err != nil {
			return report, fmt.Errorf("organization indexes: drop %s: %w", name, err)
		}
		delete(existing, name)
		report.Dropped = append(report.Dropped, name)
	}
	// Largest first: they gain most, and a pass cut short by its context
	// has done those.
	slices.SortFunc(sizes, func(a, b orgSize) int { return cmp.Or(cmp.Compare(b.chunks, a.chunks), strings.Compare(a.org, b.org)) })
	for _, s := range sizes {
		name := orgIndexName(s.org)
		if _, ok := existing[name]; ok || s.chunks < minChunks {
			continue
		}
		if err := buildOrganizationIndex(ctx, conn, schema, name, s); err != nil {
			return report, err
		}
		report.Created = append(report.Created, name)
	}
	return report, nil
}

type orgSize struct {
	org    string
	chunks int
}

// organizationSizes returns the organizations of at least `least` chunks
// (IndexOrganizations asks for half its threshold: those that keep an
// index).
func organizationSizes(ctx context.Context, conn *pgx.Conn, least int) ([]orgSize, error) {
	var sizes []orgSize
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('palisade.maintenance', 'organization-indexes', true)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT org_id, count(*) FROM knowledge_chunks GROUP BY org_id HAVING count(*) >= $1`, least)
		if err != nil {
			return err
		}
		var s orgSize
		_, err = pgx.ForEachRow(rows, []any{&s.org, &s.chunks}, func() error {
			sizes = append(sizes, s)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("organization indexes: count chunks per organization: %w", err)
	}
	return sizes, nil
}

// organizationIndexes returns the per-organization indexes of schema and
// whether each is valid (a concurrent build that failed leaves one that is
// not).
func organizationIndexes(ctx context.Context, conn *pgx.Conn, schema string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname, i.indisvalid FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 AND t.relname = 'knowledge_chunks' AND starts_with(c.relname, $2)`, schema, orgIndexPrefix)
	if err != nil {
		return nil, fmt.Errorf("organization indexes: list: %w", err)
	}
	out := map[string]bool{}
	var (
		name  string
		valid bool
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &valid}, func() error {
		out[name] = valid
		return nil
	}); err != nil {
		return nil, fmt.Errorf("organization indexes: list: %w", err)
	}
	return out, nil
}

// buildOrganizationIndex builds s's index, with room to build its graph in
// memory (about 3 kB a chunk, at most 1 GB).
func buildOrganizationIndex(ctx context.Context, conn *pgx.Conn, schema, name string, s orgSize) error {
	literal, err := orgLiteral(s.org)
	if err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	mem := min(max(64, s.chunks*3/1024), 1024)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SET maintenance_work_mem = '%dMB'`, mem)); err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	stmt := `CREATE INDEX CONCURRENTLY IF NOT EXISTS ` + pgx.Identifier{name}.Sanitize() + ` ON ` +
		pgx.Identifier{schema, "knowledge_chunks"}.Sanitize() + ` USING hnsw (embedding vector_cosine_ops) WHERE org_id = ` + literal
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("organization indexes: build %s (%d chunks): %w", name, s.chunks, err)
	}
	if _, err := conn.Exec(ctx, `RESET maintenance_work_mem`); err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	return nil
}

// orgIndexName is the name of org's index: a hash, so that names are of
// one length and say nothing of the id beyond what the index's predicate
// does.
func orgIndexName(org string) string {
	sum := sha256.Sum256([]byte(org))
	digits, _ := strconv.Atoi(orgIndexHashDigits)
	return orgIndexPrefix + hex.EncodeToString(sum[:])[:digits]
}

// errOrgID is returned for an organization id an index predicate will not
// quote: ids are made by Palisade, so one outside these characters is not.
var errOrgID = errors.New("organization id outside [A-Za-z0-9_.:-]")

// orgLiteral quotes org as an SQL string literal for an index predicate
// (a statement that takes no parameters).
func orgLiteral(org string) (string, error) {
	if org == "" {
		return "", errOrgID
	}
	for _, c := range org {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.:-", c)
		if !ok {
			return "", fmt.Errorf("%w: %q", errOrgID, org)
		}
	}
	return "'" + org + "'", nil
}
