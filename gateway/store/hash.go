package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// HashEntry computes an audit entry's chain hash: SHA-256 over the previous
// entry's hash and a canonical JSON encoding of the entry's fields (Seq,
// time in UTC with nanoseconds, and every text field), so that removing,
// inserting, reordering or changing any entry breaks the chain.
func HashEntry(e AuditEntry) string {
	canon, _ := json.Marshal([]any{
		e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.ActorOrg, e.Action,
		e.BundleID, e.CPR, e.Outcome, e.Detail,
	})
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{0})
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyChain checks a run of consecutive entries; prev is the hash of the
// entry before the first one ("" when the run starts the log). It returns
// the Seq of the first broken entry, or 0 when the run holds.
func VerifyChain(prev string, entries []AuditEntry) int64 {
	for _, e := range entries {
		if e.PrevHash != prev || HashEntry(e) != e.Hash {
			return e.Seq
		}
		prev = e.Hash
	}
	return 0
}
