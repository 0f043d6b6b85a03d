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
// organization gets indexes of its own: the most a search of an
// organization with one ranks by an exact scan, so that every organization
// whose searches go through an HNSW index walks its own.
const DefaultOrganizationIndexMin = indexedExactScanMaxChunks

// orgIndexPrefix names the per-organization HNSW indexes; the first
// orgIndexHashDigits hex digits of the organization id's SHA-256 complete
// the name (orgIndexName; searchSQL computes the same name to know whether
// an organization has its index). orgLevelsIndexPrefix names the
// per-organization keyword indexes the same way.
const (
	orgIndexPrefix       = "knowledge_chunks_embedding_org_"
	orgLevelsIndexPrefix = "knowledge_chunk_terms_levels_org_"
	orgIndexHashDigits   = "16"
)

// orgIndexKind is one kind of index an organization gets: where, and how
// it is built.
type orgIndexKind struct {
	prefix, table string
	// using is the index's method, columns and options.
	using string
	// reloptions is how pg_class records the options: an index of the
	// kind whose options are not these was built with other parameters,
	// and is built anew.
	reloptions []string
}

// orgIndexKinds are the indexes of a large organization, the cheaper to
// build first.
//
// The keyword ranking's GIN index over the levels of its chunks' terms:
// the shared index leads with org_id, so each of a search's lookups (one
// per cell, up to 128) intersects the organization's whole entry, all its
// chunks, with each lexeme's, and at 346,009 chunks a lookup read about 90
// index pages (0.5 ms). The organization's own index holds its rows alone,
// so a lookup reads the lexemes' entries and nothing else (0.17 ms). Its
// pending list of new entries is kept to 256 kB, as migration 00021 keeps
// the shared one's: each of those lookups reads the whole list.
//
// The vector ranking's HNSW graph (see IndexOrganizations), built with
// ef_construction 128 rather than pgvector's default of 64. An
// organization's chunks are clustered (its documents' topics), and a graph
// built with the default candidate list leaves some of them poorly linked:
// at 346,009 chunks its searches recalled 0.930–0.976 of the exact ten
// nearest, and a wider ef_search did not help (0.978 at 1,000), the chunks
// missed being ones the walk does not reach. Built with 128, the same
// searches recall 0.992 in the same time; the build takes about twice as
// long (BENCHMARKS.md).
func orgIndexKinds() []orgIndexKind {
	return []orgIndexKind{
		{prefix: orgLevelsIndexPrefix, table: "knowledge_chunk_terms", using: `gin (levels) WITH (gin_pending_list_limit = 256)`,
			reloptions: []string{"gin_pending_list_limit=256"}},
		{prefix: orgIndexPrefix, table: "knowledge_chunks", using: `hnsw (embedding vector_cosine_ops) WITH (ef_construction = 128)`,
			reloptions: []string{"ef_construction=128"}},
	}
}

// orgIndexNextSuffix names the replacement of an index being rebuilt, until
// it takes the old one's name.
const orgIndexNextSuffix = "_next"

// OrganizationIndexes reports what one IndexOrganizations pass did.
type OrganizationIndexes struct {
	// Skipped is true when another session was maintaining the indexes of
	// the schema: this pass did nothing.
	Skipped bool
	// Created and Dropped name the indexes built and dropped, Rebuilt
	// those built anew because their build parameters were not the current
	// ones, and Kept counts those left as they were.
	Created, Dropped, Rebuilt []string
	Kept                      int
}

// IndexOrganizations gives every organization with at least minChunks
// chunks indexes of its own (orgIndexKinds: an HNSW index over its
// embeddings, a GIN index over its keyword levels; partial indexes, WHERE
// org_id is that organization), and drops them once the organization has
// fallen below minChunks/2 chunks or is gone; an index built with other
// parameters than its kind's is built anew. It runs as the owner role, on
// one connection of its own, and does nothing if another session of any
// replica is already at it (an advisory lock per schema).
//
// Why: one HNSW graph over every organization serves a search restricted
// to one organization by walking on until enough of its chunks pass the
// filter. For an organization of a few percent of the table the walk
// visits tens of thousands of other organizations' tuples (about 150 ms a
// search at 1,000,000 chunks; BENCHMARKS.md). A search is planned afresh
// with its organization as a constant (searchSettingsSQL,
// keywordLevelsSettingsSQL), so the planner sees that the organization's
// own indexes hold every row it may return, and walks that smaller graph,
// and looks its keywords up in that smaller index, instead. Organizations
// below minChunks are ranked by an exact scan and need none; the indexes
// over the whole table stay for them, and for any organization between
// two passes.
//
// An index's predicate names the organization with the column's collation
// ("C"), as the searches' conditions do: with any other, the planner does
// not see that the index's predicate already says what the search's
// organization condition says, and ANDs the organization's own keyword
// index with the organization's whole entry in the shared one (48 ms a
// probe at 346,009 chunks).
//
// Indexes are built with CREATE INDEX CONCURRENTLY, so writes go on while
// a large organization's graph is built (minutes for hundreds of thousands
// of chunks); a build that failed leaves an invalid index, which the next
// pass drops and builds again. The indexes cost the organization's writes
// one more graph insert and one more GIN insert per chunk.
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
	type wanted struct {
		kind orgIndexKind
		size orgSize
	}
	byName := map[string]wanted{}
	for _, s := range sizes {
		for _, k := range orgIndexKinds() {
			byName[k.name(s.org)] = wanted{k, s}
		}
	}
	var stale []string
	for name, state := range existing {
		if _, keep := byName[name]; keep && state.valid {
			if state.current {
				report.Kept++
			} else {
				stale = append(stale, name)
			}
			continue
		}
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{schema, name}.Sanitize()); err != nil {
			return report, fmt.Errorf("organization indexes: drop %s: %w", name, err)
		}
		delete(existing, name)
		report.Dropped = append(report.Dropped, name)
	}
	// By kind, and largest first within a kind: they gain most, and a pass
	// cut short by its context has done those.
	slices.SortFunc(sizes, func(a, b orgSize) int { return cmp.Or(cmp.Compare(b.chunks, a.chunks), strings.Compare(a.org, b.org)) })
	for _, k := range orgIndexKinds() {
		for _, s := range sizes {
			name := k.name(s.org)
			if _, ok := existing[name]; ok || s.chunks < minChunks {
				continue
			}
			if err := buildOrganizationIndex(ctx, conn, schema, k, name, s); err != nil {
				return report, err
			}
			report.Created = append(report.Created, name)
		}
	}
	// Then those built with other parameters, largest first: the
	// replacement is built beside the old index, which serves until it is
	// dropped; the replacement then takes its name (the search looks an
	// organization's HNSW index up by name).
	slices.SortFunc(stale, func(a, b string) int {
		return cmp.Or(cmp.Compare(byName[b].size.chunks, byName[a].size.chunks), strings.Compare(a, b))
	})
	for _, name := range stale {
		next := name + orgIndexNextSuffix
		if err := buildOrganizationIndex(ctx, conn, schema, byName[name].kind, next, byName[name].size); err != nil {
			return report, err
		}
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{schema, name}.Sanitize()); err != nil {
			return report, fmt.Errorf("organization indexes: drop %s: %w", name, err)
		}
		if _, err := conn.Exec(ctx, `ALTER INDEX `+pgx.Identifier{schema, next}.Sanitize()+` RENAME TO `+pgx.Identifier{name}.Sanitize()); err != nil {
			return report, fmt.Errorf("organization indexes: rename %s: %w", next, err)
		}
		report.Rebuilt = append(report.Rebuilt, name)
	}
	slices.Sort(report.Dropped)
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

// orgIndexState is what a pass needs to know of an existing index: whether
// it is valid (a concurrent build that failed leaves one that is not) and
// whether it was built with its kind's current parameters.
type orgIndexState struct {
	valid, current bool
}

// organizationIndexes returns the per-organization indexes of schema, of
// every kind (and any replacement a pass cut short left behind), with
// their state.
func organizationIndexes(ctx context.Context, conn *pgx.Conn, schema string) (map[string]orgIndexState, error) {
	out := map[string]orgIndexState{}
	for _, k := range orgIndexKinds() {
		rows, err := conn.Query(ctx, `SELECT c.relname, i.indisvalid, coalesce(c.reloptions, '{}') = $4 FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_class t ON t.oid = i.indrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE n.nspname = $1 AND t.relname = $2 AND starts_with(c.relname, $3)`, schema, k.table, k.prefix, k.reloptions)
		if err != nil {
			return nil, fmt.Errorf("organization indexes: list: %w", err)
		}
		var (
			name  string
			state orgIndexState
		)
		if _, err := pgx.ForEachRow(rows, []any{&name, &state.valid, &state.current}, func() error {
			out[name] = state
			return nil
		}); err != nil {
			return nil, fmt.Errorf("organization indexes: list: %w", err)
		}
	}
	return out, nil
}

// buildOrganizationIndex builds s's index of kind k, with room to build it
// in memory (about 3 kB a chunk for a graph, at most 1 GB).
func buildOrganizationIndex(ctx context.Context, conn *pgx.Conn, schema string, k orgIndexKind, name string, s orgSize) error {
	literal, err := orgLiteral(s.org)
	if err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	mem := min(max(64, s.chunks*3/1024), 1024)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SET maintenance_work_mem = '%dMB'`, mem)); err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	stmt := `CREATE INDEX CONCURRENTLY IF NOT EXISTS ` + pgx.Identifier{name}.Sanitize() + ` ON ` +
		pgx.Identifier{schema, k.table}.Sanitize() + ` USING ` + k.using + ` WHERE org_id = ` + literal + ` COLLATE "C"`
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("organization indexes: build %s (%d chunks): %w", name, s.chunks, err)
	}
	if _, err := conn.Exec(ctx, `RESET maintenance_work_mem`); err != nil {
		return fmt.Errorf("organization indexes: %w", err)
	}
	return nil
}

// name is the name of org's index of kind k.
func (k orgIndexKind) name(org string) string {
	return k.prefix + orgIndexHash(org)
}

// orgIndexName is the name of org's HNSW index.
func orgIndexName(org string) string { return orgIndexPrefix + orgIndexHash(org) }

// orgIndexHash completes the names of org's indexes: a hash, so that names
// are of one length and say nothing of the id beyond what the index's
// predicate does.
func orgIndexHash(org string) string {
	sum := sha256.Sum256([]byte(org))
	digits, _ := strconv.Atoi(orgIndexHashDigits)
	return hex.EncodeToString(sum[:])[:digits]
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
