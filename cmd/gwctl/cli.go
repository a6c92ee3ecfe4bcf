package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehabgw/rehabgw/gateway/bundle"
	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/xmlsafe"
)

// Exit codes, stable for scripts.
const (
	exitOK          = 0
	exitRefused     = 1 // invalid bundle, bad signature, 4xx
	exitUsage       = 2 // usage or I/O error
	exitUnavailable = 3 // gateway unreachable or 5xx: retry later
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// ioErr classifies err as a usage or I/O error (exit 2), unless it already
// carries an exit code.
func ioErr(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitUsage, err: err}
}

// refused reports a bundle-level verdict: every reason on stderr, exit 1.
func refused(err error) error { return &exitError{code: exitRefused, err: err} }

type app struct {
	stdout, stderr io.Writer
}

func run(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "gwctl",
		Short:         "Client and operator CLI of the rehabilitation-case gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(a.exampleCmd(), a.validateCmd(), a.signCmd(), a.verifyCmd(), a.certsCmd(),
		a.pushCmd(), a.inboxCmd(), a.fetchCmd(), a.ackCmd(), a.auditCmd(), a.workdaysCmd())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors (unknown command, bad arguments) are usage errors.
		fmt.Fprintf(stderr, "gwctl: %v\n", err)
		return exitUsage
	}
	a.report(ee.err)
	return ee.code
}

// report prints an error: a bundle verdict one reason per line, anything else
// as one line.
func (a *app) report(err error) {
	var l errs.List
	var e *errs.Error
	if errors.As(err, &l) || errors.As(err, &e) {
		for _, x := range errs.Flatten(err) {
			fmt.Fprintf(a.stderr, "%s\n", x.Error())
		}
		return
	}
	fmt.Fprintf(a.stderr, "gwctl: %s\n", errs.Redact(strings.TrimSpace(err.Error())))
}

// readBundle opens a bundle directory and reads its manifest; the caller
// closes the Dir. A failure to open is an I/O error; a failed manifest read
// is returned as it is, for the caller to classify.
func readBundle(dir string) (*bundle.Dir, []byte, error) {
	d, err := bundle.OpenDir(dir)
	if err != nil {
		return nil, nil, ioErr(err)
	}
	data, err := d.ReadManifest(xmlsafe.Manifest.MaxBytes)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, data, nil
}

// existingDir checks a bundle directory argument.
func existingDir(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return ioErr(err)
	}
	if !st.IsDir() {
		return usageErr("%s is not a directory", path)
	}
	return nil
}
