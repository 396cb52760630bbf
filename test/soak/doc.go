// Package soak runs crproxy through repeated outages on real clusters and
// checks that nothing acknowledged is lost, nothing appears that nobody
// wrote, reads never fail while a target is down, watchers end with the
// target's state, and crproxy does not grow.
//
// `make soak` runs it with 20 target restarts; `make test` runs a 3-minute
// version. By hand:
//
//	go test ./test/soak -run TestSoak -v -timeout 60m \
//	    -soak.duration=10m -soak.restart-interval=15s [-soak.target-restarts=20]
//
// The harness starts an etcd, a target and a client kube-apiserver, and
// crproxy as a separate process (bin/crproxy, so it can be killed with
// SIGKILL). Writers create, update and delete objects through the client
// cluster and record every answer as acknowledged, failed (a Status that
// says nothing was written) or unknown; readers list and get; watchers run
// client-go informers through the client cluster. Every cycle either stops
// the target apiserver or kills crproxy, keeps it down 1–10 s, and starts
// it again; then it measures how long until the mirror equals the target
// (the same objects at the same resourceVersions: a list of the target at
// resourceVersion X against crproxy's list with resourceVersionMatch=Exact
// at X). It ends with a summary table.
package soak
