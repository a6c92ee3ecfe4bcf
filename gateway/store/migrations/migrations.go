// Package migrations holds the store's schema as goose SQL migrations, one
// directory per dialect (sqlite/, postgres/), embedded in the binary. The
// store runs them when it opens a database; see store.OpenSQLite and
// store.OpenPostgres.
//
// Rules for new migrations: never edit a released file; add the next number
// in both dialects; keep both schemas equivalent (the conformance suite in
// store/storetest runs against both).
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite returns the SQLite migrations.
func SQLite() fs.FS { return sub("sqlite") }

// Postgres returns the PostgreSQL migrations.
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return f
}
