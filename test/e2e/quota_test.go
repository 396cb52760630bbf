package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// A ResourceQuota on count/myresources.example.com in the client counts the
// tenant's own objects in that namespace, and follows a delete: the client's
// quota controller lists and watches them through crproxy with metadata
// informers. Another tenant's objects in the same namespace at the target
// are not counted.
func TestQuotaCountsTenantObjects(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))

	kubectl(t, ctx, target, "create", "namespace", "quota")
	for i := range 2 {
		kubectlApply(t, ctx, target, fmt.Sprintf(`apiVersion: example.com/v1
kind: MyResource
metadata:
  name: other-%d
  namespace: quota
  labels:
    vcluster.com/owner-vcluster: someone-else
    vcluster.com/owner-project: default
spec:
  name: not ours
`, i))
	}
	kubectl(t, ctx, client, "create", "namespace", "quota")
	for i := range 3 {
		kubectlApply(t, ctx, client, fmt.Sprintf("apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: mine-%d\n  namespace: quota\nspec:\n  name: ours\n", i))
	}
	// The quota controller rediscovers resources every 30 s and computes a
	// quota's usage of a resource only once it monitors the resource, as
	// for any new CRD; after that, a new quota is counted at once.
	crproxytest.Eventually(t, ctx, 90*time.Second, func() string {
		for _, line := range controllerManagerLog(t, client) {
			if strings.Contains(line, "QuotaMonitor created object count evaluator") && strings.Contains(line, `resource="myresources.example.com"`) {
				return ""
			}
		}
		return "the quota controller does not monitor myresources.example.com"
	})
	kubectl(t, ctx, client, "create", "quota", "myresources", "-n", "quota", "--hard=count/myresources.example.com=10")

	used := func(want string) func() string {
		return func() string {
			out, err := client.Kubectl(ctx, "get", "quota", "myresources", "-n", "quota", "-o", `jsonpath={.status.used.count/myresources\.example\.com}`)
			if err != nil || strings.TrimSpace(out) != want {
				return fmt.Sprintf("quota used %q (err %v), want %s", out, err, want)
			}
			return ""
		}
	}
	crproxytest.Eventually(t, ctx, 30*time.Second, used("3"))
	kubectl(t, ctx, client, "delete", "myresource", "mine-0", "-n", "quota")
	crproxytest.Eventually(t, ctx, 60*time.Second, used("2"))

	if errs := controllerManagerErrors(t, client, "example.com"); len(errs) > 0 {
		t.Fatalf("the client's kube-controller-manager logged %d errors about example.com, first:\n%s", len(errs), strings.Join(errs[:min(5, len(errs))], "\n"))
	}
}
