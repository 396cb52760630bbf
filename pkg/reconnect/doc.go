// Package reconnect tracks each target's health and brings it back.
//
// Contract: per target, a connection state (connected, unreachable since T,
// forbidden, resyncing) driven by the informers' errors and a cheap probe;
// reconnection by exponential backoff with jitter and a cap
// (github.com/cenkalti/backoff/v4), reset on success. One target's outage
// never slows another's group/versions. Readers of the state use it to mark
// stale reads with a Warning and to fail writes fast with 503.
package reconnect
