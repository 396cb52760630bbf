// Package localcluster runs real Kubernetes control planes on this machine:
// one etcd and any number of kube-apiservers, built from their Go modules by
// `make tools` into bin/.
//
// Every apiserver listens on a free loopback port, keeps its data under its
// own etcd prefix, and has its own certificate authorities: one for serving
// and client certificates, one for the aggregation layer's front proxy (so an
// APIService can reach a server on localhost), and a service-account key.
// Authorization is RBAC. Each process writes its log to a file in the
// environment's folder; LogTail returns the end of it for a failing test.
//
// An apiserver can be stopped and started again in place (same port, same
// certificates, same data), which is how outages are tested.
//
// Tests, the soak harness, the benchmarks and `crproxy dev` all start their
// clusters here:
//
//	env, err := localcluster.Start(ctx, localcluster.Options{Dir: dir})
//	if err != nil { ... }
//	defer env.Stop()
//	target, err := env.StartAPIServer(ctx, "target")
//	out, err := target.Kubectl(ctx, "get", "namespaces")
//
// Package clustertest wraps this for go tests (one etcd per test binary,
// cleanup and log tails on failure).
package localcluster
