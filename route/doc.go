// Package route holds what relaychain says on the wire and in route files:
// the Route type and its route-file parser, and the frame codec for the
// link preface, requests, responses, starts, trailers and listings. Every
// decoder checks each length against its limit before it allocates. The
// package knows nothing of sockets, yamux or the files served;
// docs/protocol.md describes the byte layout.
package route
