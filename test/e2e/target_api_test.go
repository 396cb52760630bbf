package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// targetAPIRBAC lets the client identity use every resource of
// changes.example.com at the target, as a platform that lets tenants
// bring CRDs of a group would.
var targetAPIRBAC = crproxytest.ClientRBAC("changes-client",
	rbacv1.PolicyRule{APIGroups: []string{"changes.example.com"}, Resources: []string{"*"}, Verbs: []string{"*"}},
	crproxytest.NamespacesRule)

// gizmoCRD is a CRD of changes.example.com in the given scope, with the
// given short names.
func gizmoCRD(scope string, shortNames ...string) string {
	return changesCRD("Gizmo", scope, shortNames...)
}

// changesCRD is a CRD of changes.example.com for kind in the given scope,
// with the given short names.
func changesCRD(kind, scope string, shortNames ...string) string {
	lower := strings.ToLower(kind)
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]ss.changes.example.com
spec:
  group: changes.example.com
  names:
    kind: %[2]s
    listKind: %[2]sList
    plural: %[1]ss
    singular: %[1]s
    shortNames: [%[3]s]
  scope: %[4]s
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, lower, kind, strings.Join(shortNames, ", "), scope)
}

// The target's API changes while crproxy runs, and the client follows it
// as it would follow its own CRDs: a CRD created at the target appears in
// the client's discovery and is usable; a change of its short names is
// seen; a deleted CRD leaves the client's discovery and routing (its
// requests answer 404 as the target's do, its watches end, its mirror is
// dropped); a CRD created anew in another scope is served in that scope.
// The group/version is a wildcard key.
func TestTargetAPIChanges(t *testing.T) {
	ctx := testContextWithin(t, 5*time.Minute)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	kubectlApply(t, ctx, target, targetAPIRBAC)
	// Another resource of the group, served throughout: the changes of
	// gizmos leave it alone.
	kubectlApply(t, ctx, target, changesCRD("Anchor", "Namespaced"))
	kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/anchors.changes.example.com")
	cfg := crproxytest.Config("client", client, target)
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"*.changes.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}},
	}
	p := startProxy(t, client, cfg)
	tgt := newEndpoint(t, "target", target.RESTConfig())
	cli := newEndpoint(t, "client apiserver", client.RESTConfig())
	proxy := proxyEndpoint(t, p)
	kubectl(t, ctx, client, "create", "namespace", "changes")
	kubectlApply(t, ctx, client, `{"apiVersion":"changes.example.com/v1","kind":"Anchor","metadata":{"name":"a1","namespace":"changes"}}`)

	// gizmos waits until the target's aggregated discovery of
	// changes.example.com/v1 describes gizmos as wanted (nil: absent), then
	// until the client's describes them the same, and returns how long
	// the client took after the target.
	gizmos := func(t *testing.T, why string, wanted func(*apidiscoveryv2.APIResourceDiscovery) bool) time.Duration {
		t.Helper()
		var want *apidiscoveryv2.APIResourceDiscovery
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			_, v := aggregatedVersion(t, ctx, tgt, "changes.example.com", "v1")
			if want = resourceEntry(v, "gizmos"); !wanted(want) {
				return fmt.Sprintf("%s: the target's gizmos entry is\n%s", why, jsonString(want))
			}
			return ""
		})
		start := time.Now()
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			_, v := aggregatedVersion(t, ctx, cli, "changes.example.com", "v1")
			if got := resourceEntry(v, "gizmos"); !reflect.DeepEqual(got, want) {
				return fmt.Sprintf("%s: the client's gizmos entry\n%s\nwant the target's\n%s", why, jsonString(got), jsonString(want))
			}
			return ""
		})
		took := time.Since(start)
		t.Logf("%s: the client's discovery followed the target's in %v", why, took.Round(time.Millisecond))
		return took
	}
	scope := func(s apidiscoveryv2.ResourceScope, shortNames ...string) func(*apidiscoveryv2.APIResourceDiscovery) bool {
		return func(d *apidiscoveryv2.APIResourceDiscovery) bool {
			return d != nil && d.Scope == s && reflect.DeepEqual(d.ShortNames, shortNames)
		}
	}
	absent := func(d *apidiscoveryv2.APIResourceDiscovery) bool { return d == nil }

	t.Run("a CRD created at the target is served", func(t *testing.T) {
		kubectlApply(t, ctx, target, gizmoCRD("Namespaced", "gz"))
		kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/gizmos.changes.example.com")
		gizmos(t, "created", scope(apidiscoveryv2.ScopeNamespace, "gz"))
		kubectlApply(t, ctx, client, `{"apiVersion":"changes.example.com/v1","kind":"Gizmo","metadata":{"name":"g1","namespace":"changes"},"spec":{"size":1}}`)
		if got := kubectl(t, ctx, client, "get", "gz", "-n", "changes", "-o", "name"); got != "gizmo.changes.example.com/g1" {
			t.Fatalf("kubectl get gz: %q", got)
		}
		if got := kubectl(t, ctx, target, "get", "gizmos", "-n", "changes", "g1", "-o", "jsonpath={.metadata.labels.vcluster\\.com/owner-vcluster}"); got != "client" {
			t.Fatalf("g1 at the target has owner label %q", got)
		}
	})

	t.Run("a changed CRD is described anew", func(t *testing.T) {
		kubectlApply(t, ctx, target, gizmoCRD("Namespaced", "gz", "gzm"))
		gizmos(t, "short name added", scope(apidiscoveryv2.ScopeNamespace, "gz", "gzm"))
		if got := kubectl(t, ctx, client, "get", "gzm", "-n", "changes", "-o", "name"); got != "gizmo.changes.example.com/g1" {
			t.Fatalf("kubectl get gzm: %q", got)
		}
	})

	t.Run("a deleted CRD is no longer served", func(t *testing.T) {
		// A watch open through the client ends when the resource goes, as
		// the target's own watches do.
		watchCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, _ := http.NewRequestWithContext(watchCtx, http.MethodGet, cli.base+"/apis/changes.example.com/v1/namespaces/changes/gizmos?watch=1", nil)
		resp, err := cli.hc.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("watch through the client: %v %v", resp, err)
		}
		watchEnded := make(chan struct{})
		go func() {
			defer close(watchEnded)
			buf := make([]byte, 4096)
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					return
				}
			}
		}()
		target.Kubectl(ctx, "get", "gizmos", "-n", "changes") // kubectl's cache at the target lists gizmos too
		if !strings.Contains(grepLines(metricsOf(t, ctx, proxy), "crproxy_mirror_objects"), `resource="gizmos"`) {
			t.Fatal("crproxy's metrics show no mirror of gizmos before the deletion")
		}

		kubectl(t, ctx, target, "delete", "crd", "gizmos.changes.example.com", "--wait=true", "--timeout=60s")
		gizmos(t, "deleted", absent)
		const path = "/apis/changes.example.com/v1/namespaces/changes/gizmos/g1"
		want := tgt.get(t, ctx, path, "application/json")
		for _, e := range []endpoint{cli, proxy} {
			crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
				got := e.get(t, ctx, path, "application/json")
				if got.code != want.code || string(got.body) != string(want.body) {
					return fmt.Sprintf("GET %s through %s: %d %s\nthe target answers %d %s", path, e.name, got.code, got.body, want.code, want.body)
				}
				return ""
			})
		}
		// kubectl, whose discovery cache still lists gizmos, says what
		// it says at the target.
		native, nerr := target.Kubectl(ctx, "get", "gizmos", "-n", "changes")
		out, err := client.Kubectl(ctx, "get", "gizmos", "-n", "changes")
		if err == nil || nerr == nil || out != native {
			t.Fatalf("kubectl get gizmos after the CRD was deleted: %v\n%s\nat the target: %v\n%s", err, out, nerr, native)
		}
		select {
		case <-watchEnded:
		case <-time.After(15 * time.Second):
			t.Fatal("a watch of gizmos through the client is still open 15 s after the CRD was deleted")
		}
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			if m := grepLines(metricsOf(t, ctx, proxy), "crproxy_mirror_"); strings.Contains(m, `resource="gizmos"`) {
				return "crproxy still mirrors gizmos:\n" + m
			}
			return ""
		})
	})

	t.Run("a CRD created anew in another scope is served in that scope", func(t *testing.T) {
		kubectlApply(t, ctx, target, gizmoCRD("Cluster", "gz"))
		kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/gizmos.changes.example.com")
		gizmos(t, "created cluster-scoped", scope(apidiscoveryv2.ScopeCluster, "gz"))
		// kubectl's discovery cache still says namespaced, natively too:
		// it refreshes only for names it does not know.
		if err := os.RemoveAll(filepath.Join(client.Dir, "kubectl-cache")); err != nil {
			t.Fatal(err)
		}
		kubectlApply(t, ctx, client, `{"apiVersion":"changes.example.com/v1","kind":"Gizmo","metadata":{"name":"g2"},"spec":{"size":2}}`)
		if got := kubectl(t, ctx, client, "get", "gz", "-o", "name"); got != "gizmo.changes.example.com/g2" {
			t.Fatalf("kubectl get gz (cluster-scoped): %q", got)
		}
	})
	t.Run("the other resource of the group was left alone", func(t *testing.T) {
		if got := kubectl(t, ctx, client, "get", "anchors", "-n", "changes", "-o", "name"); got != "anchor.changes.example.com/a1" {
			t.Fatalf("kubectl get anchors: %q", got)
		}
	})
}

// resourceEntry returns the entry of resource in v, or nil.
func resourceEntry(v *apidiscoveryv2.APIVersionDiscovery, resource string) *apidiscoveryv2.APIResourceDiscovery {
	if v == nil {
		return nil
	}
	for i := range v.Resources {
		if v.Resources[i].Resource == resource {
			return &v.Resources[i]
		}
	}
	return nil
}

// metricsOf returns crproxy's /metrics.
func metricsOf(t *testing.T, ctx context.Context, e endpoint) string {
	t.Helper()
	a := e.get(t, ctx, "/metrics", "text/plain")
	if a.code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", a.code, a.body)
	}
	return string(a.body)
}
