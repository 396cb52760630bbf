//go:build !race

package writethrough

// raceEnabled tells the tests that the race detector slows everything
// down (5-20x), so wall-clock bounds are loosened.
const raceEnabled = false
