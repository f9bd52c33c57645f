//go:build !race

package yamux

// raceEnabled says the race detector is on (relaychain patch).
const raceEnabled = false
