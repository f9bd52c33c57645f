// Package e2e holds end-to-end tests of the built binaries: they build
// cmd/node and cmd/client with the go command, start an origin and relays
// as real processes on 127.0.0.1:0, and drive them with the client the way
// a user would, checking output, exit statuses and the bytes fetched.
//
// The tests skip when the go command is not on PATH. Under -race the
// binaries are built with -race too, so a data race in a node or the client
// fails the test through a non-zero exit status.
//
// The package has no non-test code.
package e2e
