package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/platform"
)

// TestMain stops the test clusters when the tests end.
func TestMain(m *testing.M) { clustertest.Main(m) }

// crossProjectRBAC grants the documentation's client the cross-project
// target: platform-rbac.yaml in the namespace of project other-project.
const crossProjectRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: vcluster-proxy-target-access
  namespace: p-other-project
rules:
- apiGroups: ["management.loft.sh"]
  resources: ["virtualclusterinstances"]
  resourceNames: ["target"]
  verbs: ["use"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: client-vcluster-proxy-access
  namespace: p-other-project
subjects:
- kind: User
  name: "loft:vcluster:p-default:client"
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: vcluster-proxy-target-access
  apiGroup: rbac.authorization.k8s.io
`

// virtualClusterInstances are the platform's objects of the targets.
const virtualClusterInstances = `apiVersion: management.loft.sh/v1
kind: VirtualClusterInstance
metadata: {name: target, namespace: p-default}
---
apiVersion: management.loft.sh/v1
kind: VirtualClusterInstance
metadata: {name: target, namespace: p-other-project}
---
apiVersion: management.loft.sh/v1
kind: VirtualClusterInstance
metadata: {name: orchestrator, namespace: p-default}
`

// TestManagementCluster runs the check against a real kube-apiserver as the
// platform's management cluster, with the documentation's platform RBAC:
// the documentation's client may use its target and another client may not;
// a cross-project grant and its revocation take effect within seconds; while
// the management cluster is down the last answer is kept for reads.
func TestManagementCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	mgmt := clustertest.NewAPIServer(t, "platform", localcluster.APIServerOptions{Bare: true})
	if out, err := mgmt.Kubectl(ctx, "create", "namespace", "p-default"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := mgmt.Kubectl(ctx, "create", "namespace", "p-other-project"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := crproxytest.InstallCRD(ctx, mgmt, "virtualclusterinstance-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	if out, err := crproxytest.ApplyYAML(ctx, mgmt, virtualClusterInstances); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := crproxytest.Apply(ctx, mgmt, "platform-rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	// The documentation's troubleshooting command agrees with the
	// decisions below.
	canI := func(name, as, namespace string) string {
		out, _ := mgmt.Kubectl(ctx, "auth", "can-i", "use", "virtualclusterinstances/"+name, "--as="+as, "-n", namespace)
		return strings.TrimSpace(out)
	}
	if got := canI("target", "loft:vcluster:p-default:client", "p-default"); got != "yes" {
		t.Errorf("kubectl auth can-i for the documentation's client: %q", got)
	}

	cfg := &config.Config{
		Client: config.Client{Project: "default", Name: "client"},
		Targets: []config.Target{
			{Name: "target", Project: "default", Kubeconfig: "unused"},
			{Name: "target", Project: "other-project", Kubeconfig: "unused"},
		},
		Experimental: config.Experimental{Proxy: config.Proxy{CustomResources: map[string]config.CustomResourceProxy{
			"myresources.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target"}},
			"otherresources.test.io/v2":  {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target", Project: "other-project"}},
		}}},
		// Its admin is crproxy's identity there.
		Platform: &config.Platform{Kubeconfig: mgmt.KubeconfigPath},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	checker := run(ctx, t, cfg, platform.Options{})
	changes := checker.Subscribe(ctx)
	const own, cross = "default/target", "other-project/target"
	expect(t, checker, own, platform.Allowed)
	expect(t, checker, cross, platform.Denied)
	gr := schema.GroupResource{Group: "test.io", Resource: "otherresources"}
	if err := platform.Admit(gr, checker.Decision(cross), false); err == nil || !strings.Contains(err.Error(), "-n p-other-project") {
		t.Errorf("a read of the cross-project target: %v, want 403 naming p-other-project", err)
	}

	// Another client of the same target.
	other := run(ctx, t, cfg, platform.Options{Client: config.Client{Project: "default", Name: "other-client"}})
	expect(t, other, own, platform.Denied)
	if got := canI("target", "loft:vcluster:p-default:other-client", "p-default"); got != "no" {
		t.Errorf("kubectl auth can-i for another client: %q", got)
	}

	// A cross-project grant, then its revocation, each seen within the
	// default interval, and told to subscribers.
	start := time.Now()
	if out, err := crproxytest.ApplyYAML(ctx, mgmt, crossProjectRBAC); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, cross, platform.Allowed))
	t.Logf("grant in effect after %s", time.Since(start).Round(time.Millisecond))
	waitChange(t, changes, cross)
	start = time.Now()
	if out, err := mgmt.Kubectl(ctx, "delete", "rolebinding", "client-vcluster-proxy-access", "-n", "p-other-project"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, cross, platform.Denied))
	t.Logf("revocation in effect after %s", time.Since(start).Round(time.Millisecond))
	waitChange(t, changes, cross)

	// The management cluster goes down: Unknown, the last answers kept.
	mgmt.Stop()
	// Read once it is down: a periodic check may have answered since.
	answered := checker.Decision(own).Answered
	checker.Recheck(own)
	checker.Recheck(cross)
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, own, platform.Unknown))
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, cross, platform.Unknown))
	d := checker.Decision(own)
	if !d.Allowed || !d.Answered.Equal(answered) || !d.MayRead() || d.MayWrite() {
		t.Errorf("own target while the management cluster is down: %+v", d)
	}
	if err := platform.Admit(gr, d, false); err != nil {
		t.Errorf("a read while the management cluster is down: %v", err)
	}
	if w := platform.Warning(d); w == "" {
		t.Error("no Warning for a read while the management cluster is down")
	}
	err := platform.Admit(gr, d, true)
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("a write while the management cluster is down: %v, want 503", err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(d.Reason, "127.0.0.1") {
		t.Errorf("the answer names the management cluster's address: %v (%s)", err, d.Reason)
	}
	if d := checker.Decision(cross); d.Allowed || d.MayRead() {
		t.Errorf("cross-project target while the management cluster is down: %+v, want the denial kept", d)
	}

	// Back.
	if err := mgmt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, own, platform.Allowed))
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, cross, platform.Denied))

	// The documentation's multi-client platform RBAC: its Role, of the same
	// name, now grants the orchestrator only, so the basic client loses
	// its target and the two teams get theirs.
	if err := crproxytest.Apply(ctx, mgmt, "multi-client-platform-rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	crproxytest.Eventually(t, ctx, 2*platform.DefaultInterval, state(checker, own, platform.Denied))
	teams := &config.Config{
		Targets:  []config.Target{{Name: "orchestrator", Kubeconfig: "unused"}},
		Platform: cfg.Platform,
	}
	for _, team := range []string{"team-a", "team-b"} {
		teamChecker := run(ctx, t, teams, platform.Options{Client: config.Client{Name: team}, Targets: teams.Targets})
		expect(t, teamChecker, "default/orchestrator", platform.Allowed)
	}
}

// run starts the checker of cfg with opts until the test ends and waits for
// its first decisions.
func run(ctx context.Context, t *testing.T, cfg *config.Config, opts platform.Options) *platform.Checker {
	t.Helper()
	opts.Logger = zaptest.NewLogger(t)
	checker, err := platform.NewForConfig(cfg, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		checker.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	first, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := checker.WaitFirst(first); err != nil {
		t.Fatalf("first check: %v", err)
	}
	return checker
}

// state is a check for crproxytest.Eventually.
func state(c *platform.Checker, id string, want platform.State) func() string {
	return func() string {
		if d := c.Decision(id); d.State != want {
			return "target " + id + " is " + string(d.State) + " (" + d.Reason + "), want " + string(want)
		}
		return ""
	}
}

// expect checks a target's state now.
func expect(t *testing.T, c *platform.Checker, id string, want platform.State) {
	t.Helper()
	if problem := state(c, id, want)(); problem != "" {
		t.Error(problem)
	}
}

// waitChange waits for id on a subscription, skipping other targets.
func waitChange(t *testing.T, changes <-chan string, id string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-changes:
			if got == id {
				return
			}
		case <-timeout:
			t.Errorf("no change of %s told to the subscriber", id)
			return
		}
	}
}
