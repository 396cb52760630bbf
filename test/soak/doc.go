// Package soak runs crproxy for a long time against real clusters while the
// target keeps failing, and checks that nothing acknowledged is lost (see
// the target-outage issue; `make soak`).
package soak
