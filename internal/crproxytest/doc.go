// Package crproxytest is crproxy's test kit, the one the end-to-end tests,
// the benchmarks, the soak and `crproxy dev` share: the documentation's
// manifests (CRDs and RBAC, embedded), a tenant's grant at a target for a
// test's own resources (ClientRBAC), crproxy configurations built as
// config.Config, crproxy run in this process or as its own, object helpers
// and Eventually. Clusters come from internal/localcluster (and, in tests,
// from its clustertest).
//
// In a test:
//
//	target := clustertest.NewAPIServer(t, "target")
//	client := clustertest.NewAPIServer(t, "client")
//	if err := crproxytest.InstallCRD(ctx, target, "myresource-crd.yaml"); err != nil { ... }
//	if err := crproxytest.Apply(ctx, target, "target-rbac.yaml"); err != nil { ... }
//	p := crproxytest.StartProxy(t, crproxytest.Options{
//		Client: client,
//		Config: crproxytest.Config("client", client, target),
//	})
//	// kubectl --kubeconfig client.KubeconfigPath get myresources now goes
//	// through p; p.DirectConfig reaches crproxy without the aggregator.
//
// Outside a test, New and Proxy.Start do the same without a testing.TB.
// A Proxy started in-process (the default) shares the test's race detector;
// one started as a process (Options.Process) has its own memory and can be
// killed as a crash would.
package crproxytest
