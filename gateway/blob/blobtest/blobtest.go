// Package blobtest is the conformance suite every blob.Store runs: byte-exact
// round trips (including the multipart path), NotFound, idempotent Delete,
// List with prefix and age, Ping, and what a failed Put leaves behind.
//
// The suite writes under a fresh random prefix, so it can run repeatedly
// against a persistent bucket; it deletes what it wrote.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehabgw/rehabgw/gateway/blob"
	"github.com/rehabgw/rehabgw/gateway/errs"
)

// Sizes are the round-trip sizes: empty, one byte, the 1,024 bytes that
// gofakes3 used to store with minio-go's chunk framing, just over the 5 MiB
// S3 minimum part, and one large enough for several PartSize parts.
var Sizes = []int64{0, 1, 1024, 5<<20 + 1, 4*blob.PartSize + 12345}

// Run runs the suite against s.
func Run(t *testing.T, s blob.Store) {
	ctx := context.Background()
	base := "blobtest/" + randomHex(8) + "/"
	t.Cleanup(func() {
		_ = s.List(context.Background(), base, time.Now().Add(time.Hour), func(k string) error {
			return s.Delete(context.Background(), k)
		})
	})

	t.Run("ok/ping", func(t *testing.T) {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("ok/roundtrip", func(t *testing.T) {
		for _, size := range Sizes {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				key := fmt.Sprintf("%sroundtrip/%d", base, size)
				want := Put(t, s, key, size, 1)
				got, n := Read(t, s, key)
				if n != size || got != want {
					t.Fatalf("read back %d bytes sha256 %s, want %d bytes sha256 %s", n, got, size, want)
				}
			})
		}
	})

	t.Run("ok/overwrite", func(t *testing.T) {
		key := base + "overwrite"
		Put(t, s, key, 3000, 1)
		want := Put(t, s, key, 2000, 2)
		if got, n := Read(t, s, key); got != want || n != 2000 {
			t.Fatalf("after overwrite: %d bytes %s, want 2000 bytes %s", n, got, want)
		}
	})

	t.Run("fail/get-missing", func(t *testing.T) {
		rc, err := s.Get(ctx, base+"missing")
		if err == nil {
			rc.Close()
			t.Fatal("Get of a missing key succeeded")
		}
		if errs.KindOf(err) != errs.NotFound || errs.CodeOf(err) != "blob.not_found" {
			t.Fatalf("Get missing: kind %v code %s (%v), want not-found blob.not_found", errs.KindOf(err), errs.CodeOf(err), err)
		}
	})

	t.Run("ok/delete-idempotent", func(t *testing.T) {
		key := base + "delete"
		Put(t, s, key, 10, 1)
		for i := range 2 {
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if err := s.Delete(ctx, base+"never-existed"); err != nil {
			t.Fatalf("Delete of a never-existing key: %v", err)
		}
		if _, err := s.Get(ctx, key); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("Get after Delete: %v, want NotFound", err)
		}
	})

	t.Run("ok/list", func(t *testing.T) {
		p := base + "list/"
		before := time.Now().Add(-time.Hour) // generous: the store's clock may differ a little
		keys := []string{p + "a/1", p + "a/2", p + "b", p + "c/d/e"}
		for _, k := range keys {
			Put(t, s, k, 5, 1)
		}
		Put(t, s, base+"listx", 5, 1) // shares the string prefix without the slash
		later := time.Now().Add(time.Hour)

		got := list(t, s, p, later)
		if !slices.Equal(got, keys) {
			t.Fatalf("List(%q, later) = %q, want %q", p, got, keys)
		}
		if got := list(t, s, p+"a/", later); !slices.Equal(got, keys[:2]) {
			t.Fatalf("List(a/) = %q, want %q", got, keys[:2])
		}
		if got := list(t, s, p, before); len(got) != 0 {
			t.Fatalf("List(olderThan an hour ago) = %q, want none", got)
		}
		if got := list(t, s, base+"nothing-here/", later); len(got) != 0 {
			t.Fatalf("List(empty prefix) = %q, want none", got)
		}

		stop := errors.New("stop")
		calls := 0
		err := s.List(ctx, p, later, func(string) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("List with failing callback: err %v after %d calls, want stop after 1", err, calls)
		}
	})

	t.Run("fail/reader-error", func(t *testing.T) {
		boom := errs.E(errs.TooLarge, "part.too_large", "reader gave up")
		for _, size := range []int64{10 << 10, blob.PartSize + 10} { // single PUT and multipart
			key := fmt.Sprintf("%sreader-error/%d", base, size)
			r := io.MultiReader(io.LimitReader(NewReader(1), size/2), errReader{boom})
			err := s.Put(ctx, key, r, size)
			if !errors.Is(err, boom) {
				t.Fatalf("Put(size %d) with failing reader: %v, want the reader's error", size, err)
			}
			if _, err := s.Get(ctx, key); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("after failed Put(size %d), Get: %v, want NotFound", size, err)
			}
		}
	})

	t.Run("fail/short-reader", func(t *testing.T) {
		key := base + "short"
		err := s.Put(ctx, key, bytes.NewReader(make([]byte, 100)), 200)
		if err == nil {
			t.Fatal("Put with fewer bytes than size succeeded")
		}
		if _, err := s.Get(ctx, key); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("after short Put, Get: %v, want NotFound", err)
		}
	})

	t.Run("fail/canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, base+"canceled", bytes.NewReader([]byte("x")), 1); err == nil {
			t.Fatal("Put with a canceled context succeeded")
		}
		if _, err := s.Get(cctx, base+"canceled"); err == nil {
			t.Fatal("Get with a canceled context succeeded")
		}
	})

	t.Run("ok/concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				key := fmt.Sprintf("%sconcurrent/%d", base, i)
				size := int64(100_000 + i)
				h := sha256.New()
				if err := s.Put(ctx, key, io.TeeReader(io.LimitReader(NewReader(uint64(i)), size), h), size); err != nil {
					errc <- err
					return
				}
				rc, err := s.Get(ctx, key)
				if err != nil {
					errc <- err
					return
				}
				defer rc.Close()
				h2 := sha256.New()
				if _, err := io.Copy(h2, rc); err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
					errc <- fmt.Errorf("%s: content differs", key)
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	})
}

// Put writes size bytes of the seed's stream to key and returns their SHA-256.
func Put(t testing.TB, s blob.Store, key string, size int64, seed uint64) string {
	t.Helper()
	h := sha256.New()
	if err := s.Put(context.Background(), key, io.TeeReader(io.LimitReader(NewReader(seed), size), h), size); err != nil {
		t.Fatalf("Put %s (%d bytes): %v", key, size, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Read reads key back and returns its SHA-256 and length.
func Read(t testing.TB, s blob.Store, key string) (string, int64) {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func list(t *testing.T, s blob.Store, prefix string, olderThan time.Time) []string {
	t.Helper()
	var got []string
	if err := s.List(context.Background(), prefix, olderThan, func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

// NewReader is an endless, cheap, deterministic byte stream that differs
// per seed and never repeats within a few GiB at any useful alignment: a
// 64 KiB random-looking block whose words are mixed with the position.
func NewReader(seed uint64) io.Reader { return &genReader{seed: seed*0x9E3779B97F4A7C15 + 1} }

type genReader struct {
	seed uint64
	off  uint64
	buf  [8]byte
}

func (g *genReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		i := g.off & 7
		if i == 0 || n == 0 {
			x := (g.off>>3)*0xBF58476D1CE4E5B9 ^ g.seed
			x ^= x >> 31
			x *= 0x94D049BB133111EB
			x ^= x >> 29
			for j := range 8 {
				g.buf[j] = byte(x >> (8 * j))
			}
		}
		c := copy(p[n:], g.buf[i:])
		n += c
		g.off += uint64(c)
	}
	return n, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
