// Command gwctl is the client and operator CLI of the rehabilitation-case
// gateway. The offline commands (example, validate, sign, verify, certs) are
// the contract that vendors' scripts and test suites depend on; see
// docs/bundle-format.md and `gwctl help`.
//
// Exit codes: 0 success; 1 the bundle (or request) was refused: invalid,
// bad signature; 2 usage or I/O error; 3 the gateway was unreachable or
// unavailable (retry later).
package main

import (
	"os"

	_ "time/tzdata" // dates are read in Europe/Copenhagen on any machine
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
