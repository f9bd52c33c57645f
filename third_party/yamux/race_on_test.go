//go:build race

package yamux

// raceEnabled says the race detector is on, which slows the largest
// upstream tests several times over (relaychain patch).
const raceEnabled = true
