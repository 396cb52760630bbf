package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// labeledResource is a MyResource in default with one label app=<app>.
func labeledResource(name, app string) string {
	return fmt.Sprintf(`apiVersion: example.com/v1
kind: MyResource
metadata:
  name: %s
  namespace: default
  labels:
    app: %q
spec:
  name: %q
`, name, app, name)
}

// With the documentation's target RBAC (no deletecollection), a
// deletecollection through the client apiserver is carried out as
// individual deletes of the caller's matching objects: selectors hold,
// another tenant's objects are untouched, and the answer is the
// MyResourceList of the deleted objects, as the kube-apiserver answers.
func TestDeleteCollectionWithoutTheVerb(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	teamA := clustertest.NewAPIServer(t, "team-a")
	teamB := clustertest.NewAPIServer(t, "team-b")
	prepareWriteTarget(t, ctx, target) // the documentation's RBAC, unchanged
	startProxy(t, teamA, crproxytest.Config("team-a", teamA, target))
	startProxy(t, teamB, crproxytest.Config("team-b", teamB, target))
	kubectlApplyOut(t, ctx, teamA, labeledResource("a-x", "x")+"---\n"+labeledResource("a-y", "y")+"---\n"+labeledResource("a-x2", "x"))
	kubectlApplyOut(t, ctx, teamB, labeledResource("b-x", "x"))

	deleteCollection := func(query url.Values) []string {
		t.Helper()
		path := "/apis/example.com/v1/namespaces/default/myresources"
		if len(query) > 0 {
			path += "?" + query.Encode()
		}
		a := clientRequest(t, ctx, teamA, "DELETE", path, "", nil)
		if a.code != 200 {
			t.Fatalf("deletecollection %v: %d %s", query, a.code, a.body)
		}
		var list struct {
			Kind     string `json:"kind"`
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(a.body, &list); err != nil || list.Kind != "MyResourceList" || list.Metadata.ResourceVersion == "" {
			t.Fatalf("answer: %v %s", err, a.body)
		}
		var got []string
		for _, item := range list.Items {
			got = append(got, item.Metadata.Name)
		}
		return got
	}

	t.Run("labelSelector", func(t *testing.T) {
		deleted := deleteCollection(url.Values{"labelSelector": {"app=x"}})
		wantNames(t, sorted(deleted), "a-x", "a-x2")
		wantNames(t, names(t, ctx, teamA), "a-y")
		wantNames(t, names(t, ctx, target), "a-y", "b-x")
	})
	t.Run("fieldSelector", func(t *testing.T) {
		kubectlApplyOut(t, ctx, teamA, labeledResource("a-z", "z"))
		deleted := deleteCollection(url.Values{"fieldSelector": {"metadata.name=a-z"}})
		wantNames(t, sorted(deleted), "a-z")
		wantNames(t, names(t, ctx, teamA), "a-y")
	})
	t.Run("everything of the caller's, again (the refusal is remembered)", func(t *testing.T) {
		deleted := deleteCollection(nil)
		wantNames(t, sorted(deleted), "a-y")
		wantNames(t, names(t, ctx, teamA))
		wantNames(t, names(t, ctx, target), "b-x")
		wantNames(t, names(t, ctx, teamB), "b-x")
	})
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Deleting a client namespace (its namespace controller deletecollections
// every resource, through crproxy, with the documentation's RBAC) finishes
// and removes exactly that tenant's objects at the target.
func TestDeleteClientNamespace(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	teamA := clustertest.NewAPIServer(t, "team-a")
	teamB := clustertest.NewAPIServer(t, "team-b")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, teamA, crproxytest.Config("team-a", teamA, target))
	startProxy(t, teamB, crproxytest.Config("team-b", teamB, target))
	for _, s := range []*localcluster.APIServer{teamA, teamB} {
		kubectl(t, ctx, s, "create", "namespace", "shared")
	}
	inShared := func(name string) string {
		return strings.Replace(labeledResource(name, "x"), "namespace: default", "namespace: shared", 1)
	}
	kubectlApplyOut(t, ctx, teamA, inShared("a-1")+"---\n"+inShared("a-2"))
	kubectlApplyOut(t, ctx, teamB, inShared("b-1"))

	kubectl(t, ctx, teamA, "delete", "namespace", "shared", "--wait=true", "--timeout=90s")
	wantNames(t, names(t, ctx, target, "-n", "shared"), "b-1")
	wantNames(t, names(t, ctx, teamB, "-n", "shared"), "b-1")
}
