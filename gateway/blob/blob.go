// Package blob keeps part bytes in S3-compatible storage through minio-go:
// an external endpoint in production (MinIO, Ceph, AWS, with server-side
// encryption where the store offers it) and an embedded S3 server on
// loopback by default, so attachments always travel the S3 protocol.
//
// Objects are written under keys that no API exposes: a part becomes
// reachable only through a committed store row, so an object left by a
// failed push is an invisible orphan, and the janitor deletes it.
package blob

import (
	"context"
	"io"
	"time"
)

// Store is where part bytes live. Implementations are safe for concurrent use.
type Store interface {
	// Put streams exactly size bytes from r to key. It never buffers the
	// whole object in memory. A failed Put leaves no object, or an
	// unreferenced one the janitor removes.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get streams an object; errs Kind NotFound when absent. Callers re-check
	// the part's SHA-256 on the way out.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes an object; deleting an absent object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls each for every key under prefix last modified before
	// olderThan (for the janitor), stopping at the first error each returns.
	List(ctx context.Context, prefix string, olderThan time.Time, each func(key string) error) error
	// Ping checks that the bucket is reachable.
	Ping(ctx context.Context) error
}
