package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// startOrchestrator runs the documentation's "orchestrator" at the
// target: myResourceOperator as the target's admin, acting on every
// MyResource there (a finalizer, a ConfigMap each, status Ready). It
// returns the names ("namespace/name") of every object it has read.
func startOrchestrator(t *testing.T, ctx context.Context, target *localcluster.APIServer) func() []string {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]bool{}
	_, op := startOperator(t, ctx, target.RESTConfig(), "orchestrator", func(u *unstructured.Unstructured) {
		mu.Lock()
		defer mu.Unlock()
		seen[u.GetNamespace()+"/"+u.GetName()] = true
	})
	t.Cleanup(func() {
		if errs := op.reconcileErrors(); len(errs) > 0 {
			t.Logf("orchestrator reconcile errors (retried): %q", errs)
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for k := range seen {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
}

// The documentation's central pattern, with a MyResource written as
// published CRDs are (required fields): an orchestrator at the target acts
// on every object of the proxied resource, and two tenants work through
// crproxy. The orchestrator reads exactly the users' objects, nothing of
// crproxy's, although the tenants read consistently all along; each
// tenant reads the orchestrator's status at once (a consistent read after
// the status write was acknowledged shows it); and a delete and a
// namespace deletion in a client cluster complete through the
// orchestrator's finalizer.
func TestOrchestratorAtTheTarget(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	teamA := clustertest.NewAPIServer(t, "team-a")
	teamB := clustertest.NewAPIServer(t, "team-b")
	installCRD(t, ctx, target, "myresource-crd-required.yaml")
	apply(t, ctx, target, "target-rbac.yaml", "multi-client-target-rbac.yaml")
	seen := startOrchestrator(t, ctx, target)
	startProxy(t, teamA, crproxytest.Config("team-a", teamA, target))
	startProxy(t, teamB, crproxytest.Config("team-b", teamB, target))

	tenants := map[string]*localcluster.APIServer{"team-a": teamA, "team-b": teamB}
	var users []string
	for name, s := range tenants {
		kubectl(t, ctx, s, "create", "namespace", "work")
		var manifest strings.Builder
		for i := range 4 {
			fmt.Fprintf(&manifest, "---\napiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: %s-%d\n  namespace: work\nspec:\n  name: job %d\n  priority: low\n", name, i, i)
			users = append(users, fmt.Sprintf("work/%s-%d", name, i))
		}
		kubectlApply(t, ctx, s, manifest.String())
	}
	sort.Strings(users)

	// Each object reaches Ready at the target; the moment it has, a
	// consistent read through its tenant's cluster shows it.
	for _, key := range users {
		name := strings.TrimPrefix(key, "work/")
		tenant := tenants[name[:len("team-a")]]
		var readyRV uint64
		crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
			out, _ := target.Kubectl(ctx, "get", "myresource", name, "-n", "work", "-o", "jsonpath={.status.phase} {.metadata.resourceVersion}")
			phase, rv, _ := strings.Cut(out, " ")
			if phase != "Ready" {
				return name + " is not Ready at the target: " + out
			}
			readyRV, _ = strconv.ParseUint(rv, 10, 64)
			return ""
		})
		out := kubectl(t, ctx, tenant, "get", "myresource", name, "-n", "work", "-o", "jsonpath={.status.phase} {.metadata.resourceVersion} {.metadata.finalizers}")
		fields := strings.Fields(out)
		if len(fields) != 3 || fields[0] != "Ready" || !strings.Contains(fields[2], operatorFinalizer) {
			t.Fatalf("%s through its tenant right after the orchestrator's status write: %q", name, out)
		}
		if rv, _ := strconv.ParseUint(fields[1], 10, 64); rv < readyRV {
			t.Fatalf("%s through its tenant at resourceVersion %d, older than the status write's %d", name, rv, readyRV)
		}
	}

	// A delete through a client completes through the orchestrator's
	// finalizer, which cleans its ConfigMap up.
	kubectl(t, ctx, teamA, "delete", "myresource", "team-a-0", "-n", "work", "--timeout=60s")
	if out, err := target.Kubectl(ctx, "get", "myresource,configmap", "team-a-0", "team-a-0-config", "-n", "work", "--ignore-not-found", "-o", "name"); err != nil || out != "" {
		t.Fatalf("at the target after the delete: %q, %v", out, err)
	}
	// So does a namespace deletion in team-b's cluster: its namespace
	// controller deletes team-b's objects through crproxy.
	kubectl(t, ctx, teamB, "delete", "namespace", "work", "--timeout=90s")
	wantNames(t, names(t, ctx, target, "-n", "work"), "team-a-1", "team-a-2", "team-a-3")
	if out := kubectl(t, ctx, target, "get", "configmaps", "-n", "work", "-o", "name"); strings.Contains(out, "team-b") || !strings.Contains(out, "team-a-1-config") {
		t.Errorf("the orchestrator's ConfigMaps at the target after team-b's namespace was deleted: %q", out)
	}

	if got := seen(); fmt.Sprint(got) != fmt.Sprint(users) {
		t.Errorf("the orchestrator read %v; want exactly the users' objects %v", got, users)
	}
	namespaces := kubectl(t, ctx, target, "get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}")
	if want := "default kube-node-lease kube-public kube-system work"; namespaces != want {
		t.Errorf("the target's namespaces are %q; want %q (nothing of crproxy's)", namespaces, want)
	}
}
