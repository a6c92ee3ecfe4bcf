package store_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rehabgw/rehabgw/gateway/store"
	"github.com/rehabgw/rehabgw/gateway/store/storetest"
)

// BenchmarkCommitBundle: one new bundle with 3 parts and 2 deliveries per
// operation, durably committed (SQLite: synchronous=FULL; PostgreSQL: the
// server's fsync settings).
func BenchmarkCommitBundle(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := store.OpenSQLite(filepath.Join(b.TempDir(), "gateway.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCommit(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s := openPG(b, pgSchema(b))
		benchCommit(b, s)
	})
}

// BenchmarkCommitBundleParallel: the same from GOMAXPROCS*4 goroutines,
// all serialised by the store's write lock.
func BenchmarkCommitBundleParallel(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := store.OpenSQLite(filepath.Join(b.TempDir(), "gateway.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCommitParallel(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		benchCommitParallel(b, openPG(b, pgSchema(b)))
	})
}

var benchID atomic.Int64

func benchBundle() (*store.Bundle, []store.Delivery) {
	bd := storetest.NewBundle(fmt.Sprintf("bench-%d", benchID.Add(1)), 3)
	return bd, []store.Delivery{
		{Recipient: "region-hovedstaden", Function: "sundhedskoordinator"},
		{Recipient: "kommune-0147"},
	}
}

func benchCommit(b *testing.B, s store.Store) {
	ctx := b.Context()
	for b.Loop() {
		bd, ds := benchBundle()
		if _, _, err := s.CommitBundle(ctx, bd, ds, storetest.Entry("push", bd.CPR)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCommitParallel(b *testing.B, s store.Store) {
	ctx := b.Context()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bd, ds := benchBundle()
			if _, _, err := s.CommitBundle(ctx, bd, ds, storetest.Entry("push", bd.CPR)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
