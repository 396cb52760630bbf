package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// testResource is the documentation's "Create MyResource in client" manifest.
const testResource = `apiVersion: example.com/v1
kind: MyResource
metadata:
  name: test-resource
  namespace: default
spec:
  name: "Test Resource"
  priority: "high"
`

// prepareWriteTarget installs the documentation's CRD, with the status
// subresource its RBAC grants, and the documentation's target RBAC.
func prepareWriteTarget(t *testing.T, ctx context.Context, target *localcluster.APIServer) {
	t.Helper()
	installCRD(t, ctx, target, "myresource-crd-status.yaml")
	apply(t, ctx, target, "target-rbac.yaml", "multi-client-target-rbac.yaml")
}

// kubectlFails runs kubectl expecting it to fail and returns its output.
func kubectlFails(t *testing.T, ctx context.Context, s *localcluster.APIServer, args ...string) string {
	t.Helper()
	out, err := s.Kubectl(ctx, args...)
	if err == nil {
		t.Fatalf("kubectl %q succeeded, want an error:\n%s", args, out)
	}
	return out
}

// kubectlApplyOut applies a manifest from stdin with extra arguments and
// returns kubectl's output.
func kubectlApplyOut(t *testing.T, ctx context.Context, s *localcluster.APIServer, manifest string, args ...string) string {
	t.Helper()
	cmd := s.KubectlCmd(ctx, append([]string{"apply", "-f", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply %q: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// objectLabels reads an object's labels with kubectl.
func objectLabels(t *testing.T, ctx context.Context, s *localcluster.APIServer, namespace, name string) map[string]string {
	t.Helper()
	out := kubectl(t, ctx, s, "get", "myresource", name, "-n", namespace, "-o", "jsonpath={.metadata.labels}")
	labels := map[string]string{}
	if out != "" {
		if err := json.Unmarshal([]byte(out), &labels); err != nil {
			t.Fatalf("labels %q: %v", out, err)
		}
	}
	return labels
}

// wantOwner fails unless labels carry exactly owner's owner labels.
func wantOwner(t *testing.T, labels map[string]string, owner string) {
	t.Helper()
	if labels["vcluster.com/owner-vcluster"] != owner || labels["vcluster.com/owner-project"] != "default" {
		t.Fatalf("owner labels %v, want vcluster.com/owner-vcluster=%s and vcluster.com/owner-project=default", labels, owner)
	}
}

// The documentation's basic setup, then every kubectl verb a user writes
// with, all through the client cluster's aggregation layer.
func TestWriteDocumentationBasicSetup(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))

	t.Run("create in client, visible in both clusters with the owner labels", func(t *testing.T) {
		if out := kubectlApplyOut(t, ctx, client, testResource); out != "myresource.example.com/test-resource created" {
			t.Fatalf("apply: %q", out)
		}
		wantNames(t, names(t, ctx, client), "test-resource")
		wantNames(t, names(t, ctx, target), "test-resource")
		wantOwner(t, objectLabels(t, ctx, target, "default", "test-resource"), "client")
		if got := kubectl(t, ctx, target, "get", "myresource", "test-resource", "-o", "jsonpath={.spec.name}"); got != "Test Resource" {
			t.Fatalf("spec.name at the target = %q", got)
		}
	})

	t.Run("apply twice is idempotent", func(t *testing.T) {
		rv := kubectl(t, ctx, target, "get", "myresource", "test-resource", "-o", "jsonpath={.metadata.resourceVersion}")
		if out := kubectlApplyOut(t, ctx, client, testResource); out != "myresource.example.com/test-resource unchanged" {
			t.Fatalf("second apply: %q", out)
		}
		if now := kubectl(t, ctx, target, "get", "myresource", "test-resource", "-o", "jsonpath={.metadata.resourceVersion}"); now != rv {
			t.Fatalf("resourceVersion moved from %s to %s on an unchanged apply", rv, now)
		}
	})

	t.Run("a get right after apply reads the write", func(t *testing.T) {
		for _, priority := range []string{"low", "medium", "urgent", "high"} {
			kubectlApplyOut(t, ctx, client, strings.Replace(testResource, `"high"`, `"`+priority+`"`, 1))
			if got := kubectl(t, ctx, client, "get", "myresource", "test-resource", "-o", "jsonpath={.spec.priority}"); got != priority {
				t.Fatalf("get after apply: priority %q, want %q", got, priority)
			}
		}
	})

	t.Run("server-side apply", func(t *testing.T) {
		manifest := strings.Replace(testResource, `name: "Test Resource"`, `name: "Applied Server Side"`, 1)
		out := kubectlApplyOut(t, ctx, client, manifest, "--server-side", "--field-manager=team-tool", "--force-conflicts")
		if !strings.Contains(out, "serverside-applied") {
			t.Fatalf("server-side apply: %q", out)
		}
		if got := kubectl(t, ctx, client, "get", "myresource", "test-resource", "-o", "jsonpath={.spec.name}"); got != "Applied Server Side" {
			t.Fatalf("spec.name after server-side apply = %q", got)
		}
		managers := kubectl(t, ctx, target, "get", "myresource", "test-resource", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}")
		if !strings.Contains(managers, "team-tool") {
			t.Fatalf("field managers at the target %q, want team-tool among them", managers)
		}
		wantOwner(t, objectLabels(t, ctx, target, "default", "test-resource"), "client")
	})

	t.Run("kubectl label cannot strip or change the owner labels", func(t *testing.T) {
		kubectl(t, ctx, client, "label", "myresource", "test-resource", "vcluster.com/owner-vcluster-", "vcluster.com/owner-project-", "team=a")
		labels := objectLabels(t, ctx, target, "default", "test-resource")
		wantOwner(t, labels, "client")
		if labels["team"] != "a" {
			t.Fatalf("the caller's own label was not written: %v", labels)
		}
		kubectl(t, ctx, client, "label", "--overwrite", "myresource", "test-resource", "vcluster.com/owner-vcluster=someone-else")
		wantOwner(t, objectLabels(t, ctx, target, "default", "test-resource"), "client")
		// A JSON patch that removes every label keeps the owner labels.
		kubectl(t, ctx, client, "patch", "myresource", "test-resource", "--type=json", `-p=[{"op":"remove","path":"/metadata/labels"}]`)
		labels = objectLabels(t, ctx, target, "default", "test-resource")
		wantOwner(t, labels, "client")
		if _, ok := labels["team"]; ok {
			t.Fatalf("the JSON patch's removal of the other labels did not take effect: %v", labels)
		}
		// So does a merge patch that sets labels to null.
		kubectl(t, ctx, client, "label", "myresource", "test-resource", "team=b")
		kubectl(t, ctx, client, "patch", "myresource", "test-resource", "--type=merge", `-p={"metadata":{"labels":null}}`)
		labels = objectLabels(t, ctx, target, "default", "test-resource")
		wantOwner(t, labels, "client")
		if _, ok := labels["team"]; ok {
			t.Fatalf("the merge patch's removal of the other labels did not take effect: %v", labels)
		}
	})

	t.Run("an update with a stale resourceVersion gets 409", func(t *testing.T) {
		stale := kubectl(t, ctx, client, "get", "myresource", "test-resource", "-o", "json")
		kubectl(t, ctx, client, "patch", "myresource", "test-resource", "--type=merge", `-p={"spec":{"priority":"changed"}}`)
		cmd := client.KubectlCmd(ctx, "replace", "-f", "-")
		cmd.Stdin = strings.NewReader(strings.Replace(stale, `"priority": "high"`, `"priority": "stale"`, 1))
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Conflict") || !strings.Contains(string(out), "the object has been modified") {
			t.Fatalf("replace with a stale resourceVersion: %v\n%s", err, out)
		}
		if got := kubectl(t, ctx, target, "get", "myresource", "test-resource", "-o", "jsonpath={.spec.priority}"); got != "changed" {
			t.Fatalf("priority at the target %q, want the newer write's", got)
		}
	})

	t.Run("status subresource", func(t *testing.T) {
		kubectl(t, ctx, client, "patch", "myresource", "test-resource", "--subresource=status", "--type=merge", `-p={"status":{"phase":"Ready"}}`)
		if got := kubectl(t, ctx, client, "get", "myresource", "test-resource", "--subresource=status", "-o", "jsonpath={.status.phase}"); got != "Ready" {
			t.Fatalf("status.phase read through the client = %q", got)
		}
		if got := kubectl(t, ctx, target, "get", "myresource", "test-resource", "-o", "jsonpath={.status.phase}"); got != "Ready" {
			t.Fatalf("status.phase at the target = %q", got)
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		manifest := strings.Replace(testResource, "namespace: default", "namespace: only-in-client", 1)
		cmd := client.KubectlCmd(ctx, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `namespaces "only-in-client" not found`) {
			t.Fatalf("apply into a namespace the client cluster lacks: %v\n%s", err, out)
		}
		if out, _ := target.Kubectl(ctx, "get", "namespace", "only-in-client"); !strings.Contains(out, "NotFound") {
			t.Fatalf("the target got the namespace of a refused write: %s", out)
		}
		kubectl(t, ctx, client, "create", "namespace", "only-in-client")
		kubectlApplyOut(t, ctx, client, manifest)
		wantNames(t, names(t, ctx, target, "-n", "only-in-client"), "test-resource")
		wantNames(t, names(t, ctx, client, "-n", "only-in-client"), "test-resource")
	})

	t.Run("delete, then get answers NotFound", func(t *testing.T) {
		kubectl(t, ctx, client, "delete", "myresource", "test-resource", "-n", "only-in-client")
		out := kubectlFails(t, ctx, client, "get", "myresource", "test-resource", "-n", "only-in-client")
		if !strings.Contains(out, `myresources.example.com "test-resource" not found`) {
			t.Fatalf("get after delete: %s", out)
		}
		wantNames(t, names(t, ctx, target, "-n", "only-in-client"))
		// The object of the same name in default is untouched.
		wantNames(t, names(t, ctx, target), "test-resource")
	})
}
