package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/projections"
)

// The generic read bodies shared by the adapters. Each runs through
// db.query, which sets palisade.org_id to org for the transaction (SET
// LOCAL); the query itself must still filter on org_id = $1, with org as
// its first argument.

// getOne runs sql for org and scans its row. No row is
// projections.ErrNotFound; every error is wrapped with what.
func getOne[T any](ctx context.Context, d *db, org, what, sql string, args []any, scan func(pgx.Rows) (T, error)) (T, error) {
	var (
		v     T
		found bool
	)
	err := d.query(ctx, org, sql, args, func(rows pgx.Rows) error {
		var err error
		v, err = scan(rows)
		found = true
		return err
	})
	if err == nil && !found {
		err = projections.ErrNotFound
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// list runs sql for org and scans every row; it never returns a nil slice
// without an error. Every error is wrapped with what.
func list[T any](ctx context.Context, d *db, org, what, sql string, args []any, scan func(pgx.Rows) (T, error)) ([]T, error) {
	out := []T{}
	err := d.query(ctx, org, sql, args, func(rows pgx.Rows) error {
		v, err := scan(rows)
		out = append(out, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// put queues one write for org in the current unit (see db.exec); its
// error is wrapped with what.
func put(ctx context.Context, d *db, org, what, sql string, args ...any) error {
	if err := d.exec(ctx, org, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// listPage lists one page of org's records with the first page's query or
// the one after the cursor (see pageQuery).
func listPage[T any](ctx context.Context, d *db, org, what, first, after string, page projections.Page, scan func(pgx.Rows) (T, error)) ([]T, error) {
	sql, args := pageQuery(first, after, org, page)
	return list(ctx, d, org, what, sql, args, scan)
}
