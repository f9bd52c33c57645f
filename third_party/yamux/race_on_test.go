//go:build race

package yamux

// raceEnabled says the race detector is on, which slows the largest
// upstream tests several times over (relaychain patch).
const raceEnabled = true

// raceScale stretches the time limits of the largest upstream tests under
// the race detector (relaychain patch): TestSendData_Large's 250 MiB took
// 5.3-6.3 s of its 10 s alone on a 2-core machine, and hit the 10 s beside
// the other packages' tests, as go test ./... runs them.
const raceScale = 3
