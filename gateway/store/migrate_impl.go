package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrate brings the database up to the newest embedded migration with
// goose. locker, when not nil, serialises concurrent migrations (several
// processes opening one PostgreSQL database at once).
func migrate(ctx context.Context, dialect goose.Dialect, db *sql.DB, fsys fs.FS, locker lock.SessionLocker) error {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if locker != nil {
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// pgMigrationLock is a goose SessionLocker that waits on a blocking
// session-level advisory lock (pg_advisory_lock) instead of goose's default,
// which polls pg_try_advisory_lock every 5 s: several gatewayd processes
// starting together wait for one another's migrations without the polling
// delay. The lock goes when the session ends, so a crashed migrator does not
// leave it behind. Waiting ends with ctx.
type pgMigrationLock struct {
	class, obj int32
}

var _ lock.SessionLocker = pgMigrationLock{}

func (l pgMigrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, $2)", l.class, l.obj)
	return err
}

func (l pgMigrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1, $2)", l.class, l.obj).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("migration lock was not held")
	}
	return nil
}
