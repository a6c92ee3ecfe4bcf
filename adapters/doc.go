// Package adapters holds the gateway's edges to the outside world that are
// not the HTTP API: today the MedCom correspondence adapter (adapters/medcom)
// that sends copies of the rehabilitation team's indstilling and of klinisk
// funktion's statement to the citizen's GP and reads their receipts.
//
// Adapters depend on the core (gateway/...), never the other way round; the
// core hands them work through the store's outbox and takes their results
// (receipts, refusals) back through the same store.
package adapters
