package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// ownerRefs reads an object's ownerReferences uids (in order) and whether
// it carries any crproxy annotation.
func ownerRefs(t *testing.T, ctx context.Context, s *localcluster.APIServer, kind, name string) ([]string, map[string]string) {
	t.Helper()
	out := kubectl(t, ctx, s, "get", kind, name, "-n", "default", "-o", "json")
	var obj struct {
		Metadata struct {
			OwnerReferences []struct {
				UID string `json:"uid"`
			} `json:"ownerReferences"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	var uids []string
	for _, r := range obj.Metadata.OwnerReferences {
		uids = append(uids, r.UID)
	}
	return uids, obj.Metadata.Annotations
}

func wantUIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: ownerReferences %q, want %q", what, got, want)
	}
}

func noCrproxyAnnotations(t *testing.T, what string, annotations map[string]string) {
	t.Helper()
	for k := range annotations {
		if strings.HasPrefix(k, "crproxy.dev/client-") {
			t.Fatalf("%s: the client sees %s", what, k)
		}
	}
}

// configMap creates a ConfigMap in default and returns its UID.
func configMap(t *testing.T, ctx context.Context, s *localcluster.APIServer, name string) string {
	t.Helper()
	kubectl(t, ctx, s, "create", "configmap", name, "-n", "default")
	return kubectl(t, ctx, s, "get", "configmap", name, "-n", "default", "-o", "jsonpath={.metadata.uid}")
}

func refJSON(apiVersion, kind, name, uid string) string {
	return fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q}`, apiVersion, kind, name, uid)
}

func resourceWithOwners(name, spec string, refs ...string) string {
	return fmt.Sprintf(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":%q,"namespace":"default","ownerReferences":[%s]},"spec":{"name":%q}}`,
		name, strings.Join(refs, ","), spec)
}

func kubectlStdin(t *testing.T, ctx context.Context, s *localcluster.APIServer, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectlWithStdin(ctx, s, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %q: %v\n%s", args, err, out)
	}
	return out
}

// An ownerReference to a client ConfigMap never reaches the target, and
// the client reads back what it wrote, through every write shape; a
// target-only owner is invisible through crproxy and survives a client
// update.
func TestOwnerReferencesAcrossTheBoundary(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))
	cm1 := configMap(t, ctx, client, "owner-1")
	cm2 := configMap(t, ctx, client, "owner-2")
	ref1 := refJSON("v1", "ConfigMap", "owner-1", cm1)
	ref2 := refJSON("v1", "ConfigMap", "owner-2", cm2)

	check := func(what, name string, want ...string) {
		t.Helper()
		got, annotations := ownerRefs(t, ctx, client, "myresource", name)
		wantUIDs(t, what+" (client)", got, want...)
		noCrproxyAnnotations(t, what, annotations)
		atTarget, _ := ownerRefs(t, ctx, target, "myresource", name)
		wantUIDs(t, what+" (target)", atTarget)
	}

	kubectlStdin(t, ctx, client, resourceWithOwners("mr", "one", ref1), "create", "-f", "-")
	check("create", "mr", cm1)

	kubectlStdin(t, ctx, client, resourceWithOwners("mr", "two", ref2, ref1), "replace", "-f", "-")
	check("update", "mr", cm2, cm1)

	kubectl(t, ctx, client, "patch", "myresource", "mr", "--type=merge", `-p={"metadata":{"ownerReferences":[`+ref1+`]}}`)
	check("merge patch", "mr", cm1)

	kubectl(t, ctx, client, "patch", "myresource", "mr", "--type=json", `-p=[{"op":"add","path":"/metadata/ownerReferences/-","value":`+ref2+`}]`)
	check("JSON patch", "mr", cm1, cm2)

	kubectlStdin(t, ctx, client, resourceWithOwners("mr-ssa", "ssa", ref2), "apply", "--server-side", "-f", "-")
	check("server-side apply", "mr-ssa", cm2)

	t.Run("a target-only owner", func(t *testing.T) {
		tcm := configMap(t, ctx, target, "target-owner")
		kubectl(t, ctx, target, "patch", "myresource", "mr", "--type=json",
			`-p=[{"op":"add","path":"/metadata/ownerReferences","value":[`+refJSON("v1", "ConfigMap", "target-owner", tcm)+`]}]`)
		crproxytest.Eventually(t, ctx, 10*time.Second, func() string {
			got, _ := ownerRefs(t, ctx, client, "myresource", "mr")
			if strings.Contains(strings.Join(got, ","), tcm) {
				return fmt.Sprintf("the client sees the target's owner: %q", got)
			}
			return ""
		})
		got, annotations := ownerRefs(t, ctx, client, "myresource", "mr")
		wantUIDs(t, "client after the target's write", got, cm1, cm2)
		noCrproxyAnnotations(t, "after the target's write", annotations)
		// An update of the client's whole view keeps the target's owner.
		view := kubectl(t, ctx, client, "get", "myresource", "mr", "-o", "json")
		kubectlStdin(t, ctx, client, strings.Replace(view, `"name": "one"`, `"name": "three"`, 1), "replace", "-f", "-")
		atTarget, _ := ownerRefs(t, ctx, target, "myresource", "mr")
		wantUIDs(t, "target after the client's update", atTarget, tcm)
		got, _ = ownerRefs(t, ctx, client, "myresource", "mr")
		wantUIDs(t, "client after its update", got, cm1, cm2)
	})
}

// The garbage collectors on both sides: a proxied dependent of a client
// owner is collected in the client; a client ConfigMap owned by a proxied
// MyResource follows kubectl delete --cascade=background|foreground|orphan;
// the target's garbage collector never deletes a tenant's object for an
// owner it does not hold.
func TestOwnerReferencesGarbageCollection(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))

	gone := func(s *localcluster.APIServer, kind, name string) func() string {
		return func() string {
			out, err := s.Kubectl(ctx, "get", kind, name, "-n", "default", "-o", "name")
			if err == nil {
				return kind + "/" + name + " still exists: " + out
			}
			return ""
		}
	}

	t.Run("a proxied dependent of a client owner", func(t *testing.T) {
		cm := configMap(t, ctx, client, "gc-owner")
		kubectlStdin(t, ctx, client, resourceWithOwners("dependent", "d", refJSON("v1", "ConfigMap", "gc-owner", cm)), "create", "-f", "-")
		// The target's GC has run over it meanwhile and must keep it.
		time.Sleep(3 * time.Second)
		if _, err := target.Kubectl(ctx, "get", "myresource", "dependent", "-n", "default"); err != nil {
			t.Fatalf("the target's GC deleted a tenant's object: %v", err)
		}
		kubectl(t, ctx, client, "delete", "configmap", "gc-owner", "-n", "default")
		crproxytest.Eventually(t, ctx, 60*time.Second, gone(target, "myresource", "dependent"))
	})

	for _, cascade := range []string{"background", "foreground", "orphan"} {
		t.Run("kubectl delete --cascade="+cascade, func(t *testing.T) {
			owner := "owner-" + cascade
			kubectlApplyOut(t, ctx, client, labeledResource(owner, cascade))
			uid := kubectl(t, ctx, client, "get", "myresource", owner, "-n", "default", "-o", "jsonpath={.metadata.uid}")
			cm := "dependent-" + cascade
			kubectlStdin(t, ctx, client, fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default","ownerReferences":[{"apiVersion":"example.com/v1","kind":"MyResource","name":%q,"uid":%q,"blockOwnerDeletion":true}]}}`, cm, owner, uid), "create", "-f", "-")
			kubectl(t, ctx, client, "delete", "myresource", owner, "-n", "default", "--cascade="+cascade, "--wait=true", "--timeout=60s")
			if cascade != "orphan" {
				crproxytest.Eventually(t, ctx, 60*time.Second, gone(client, "configmap", cm))
				return
			}
			crproxytest.Eventually(t, ctx, 60*time.Second, gone(target, "myresource", owner))
			refs := kubectl(t, ctx, client, "get", "configmap", cm, "-n", "default", "-o", "jsonpath={.metadata.ownerReferences}")
			if refs != "" {
				t.Fatalf("the orphaned ConfigMap still has ownerReferences %s", refs)
			}
		})
	}
}
