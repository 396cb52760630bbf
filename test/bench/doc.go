// Package bench measures crproxy side by side with the target
// kube-apiserver on real clusters (docs/benchmarks.md): B1 list, B2 get,
// B3 watch fan-out, B4 writes, B5 cold start with the target down, B6
// recovery after an outage. TestBench runs them on one target, one client
// kube-apiserver and one crproxy process, with two references beside them
// in a process of their own (the plain hop, the floor of requests crproxy
// must send to the target, and the replay, the floor of lists answered
// from memory), and prints one Markdown table of figures, crproxy/target
// ratios and, where a bar has a floor, whether the floor met it. It runs only when CRPROXY_BENCH is set
// (it takes about 16 minutes and reports figures instead of asserting
// them):
//
//	make bench                                   # N = 10,000; bench-out/
//	make bench BENCH_FLAGS="-bench.objects=50000 -bench.only=B1,B2"
//	make bench-plot                              # docs/benchmarks/*.png
//
// -bench.json writes the results for hack/tools/benchplot, and
// -bench.profile-dir crproxy's CPU and heap profiles (taken from its
// --profiling endpoint after each benchmark's timed runs).
package bench
