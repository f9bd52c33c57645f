//go:build !race

package yamux

// raceEnabled says the race detector is on (relaychain patch).
const raceEnabled = false

// raceScale stretches time limits under the race detector (relaychain
// patch); without it, 1.
const raceScale = 1
