// Package bench measures crproxy side by side with the target
// kube-apiserver on real clusters. Its tests run only when CRPROXY_BENCH is
// set (they take minutes and print figures instead of asserting them):
//
//	CRPROXY_BENCH=1 go test ./test/bench -run TestListRatio -v -timeout 30m
//
// or all of them with `make bench`: TestListRatio (B1), TestGetThroughput
// (B2), TestWatchFanOut (B3), TestWriteLatencyRatio (B4) and TestFootprint.
package bench
