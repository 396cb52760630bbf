package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// teamResource is the documentation's manifest of a team's MyResource.
func teamResource(team, title string) string {
	return fmt.Sprintf(`apiVersion: example.com/v1
kind: MyResource
metadata:
  name: %s-resource
spec:
  name: %q
`, team, title)
}

// The documentation's multi-client isolation: team-a and team-b share one
// target, each sees and can touch only its own objects, the target holds
// both, and a client in accessResources: all sees both.
func TestWriteMultiClientIsolation(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "orchestrator")
	teamA := clustertest.NewAPIServer(t, "team-a")
	teamB := clustertest.NewAPIServer(t, "team-b")
	prepareWriteTarget(t, ctx, target)
	apply(t, ctx, target, "deletecollection-rbac.yaml")
	startProxy(t, teamA, crproxytest.Config("team-a", teamA, target))
	startProxy(t, teamB, crproxytest.Config("team-b", teamB, target))

	kubectlApplyOut(t, ctx, teamA, teamResource("team-a", "Team A Data Resource"))
	kubectlApplyOut(t, ctx, teamB, teamResource("team-b", "Team B ML Resource"))

	t.Run("each team sees only its own, the target both", func(t *testing.T) {
		wantNames(t, names(t, ctx, teamA), "team-a-resource")
		wantNames(t, names(t, ctx, teamB), "team-b-resource")
		wantNames(t, names(t, ctx, target), "team-a-resource", "team-b-resource")
		wantOwner(t, objectLabels(t, ctx, target, "default", "team-a-resource"), "team-a")
		wantOwner(t, objectLabels(t, ctx, target, "default", "team-b-resource"), "team-b")
	})

	t.Run("team-a cannot reach team-b's object by name", func(t *testing.T) {
		before := kubectl(t, ctx, target, "get", "myresource", "team-b-resource", "-o", "jsonpath={.metadata.resourceVersion}")
		notFound := `myresources.example.com "team-b-resource" not found`
		attempts := [][]string{
			{"get", "myresource", "team-b-resource"},
			{"patch", "myresource", "team-b-resource", "--type=merge", `-p={"spec":{"name":"hijacked"}}`},
			{"patch", "myresource", "team-b-resource", "--type=json", `-p=[{"op":"replace","path":"/spec/name","value":"hijacked"}]`},
			{"label", "myresource", "team-b-resource", "stolen=yes"},
			{"patch", "myresource", "team-b-resource", "--subresource=status", "--type=merge", `-p={"status":{"phase":"Hijacked"}}`},
			{"delete", "myresource", "team-b-resource"},
		}
		for _, args := range attempts {
			if out := kubectlFails(t, ctx, teamA, args...); !strings.Contains(out, notFound) {
				t.Errorf("team-a: kubectl %s: got\n%s\nwant %s", strings.Join(args, " "), out, notFound)
			}
		}
		// An update (replace) and a server-side apply of team-b's name.
		theirs := strings.Replace(teamResource("team-b", "hijacked"), "metadata:\n", "metadata:\n  namespace: default\n", 1)
		cmd := teamA.KubectlCmd(ctx, "replace", "-f", "-")
		cmd.Stdin = strings.NewReader(theirs)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), notFound) {
			t.Errorf("team-a: kubectl replace of team-b's object: %v\n%s", err, out)
		}
		cmd = teamA.KubectlCmd(ctx, "apply", "--server-side", "-f", "-")
		cmd.Stdin = strings.NewReader(theirs)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), notFound) {
			t.Errorf("team-a: kubectl apply --server-side of team-b's object: %v\n%s", err, out)
		}
		after := kubectl(t, ctx, target, "get", "myresource", "team-b-resource", "-o", "jsonpath={.metadata.resourceVersion}")
		if after != before {
			t.Fatalf("team-b's object changed (resourceVersion %s -> %s)", before, after)
		}
		wantOwner(t, objectLabels(t, ctx, target, "default", "team-b-resource"), "team-b")
	})

	t.Run("a client in accessResources: all sees both", func(t *testing.T) {
		all := clustertest.NewAPIServer(t, "client-all")
		cfg := crproxytest.Config("client", all, target)
		cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = config.CustomResourceProxy{
			Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}, AccessResources: config.AccessAll,
		}
		startProxy(t, all, cfg)
		wantNames(t, names(t, ctx, all), "team-a-resource", "team-b-resource")
		if got := kubectl(t, ctx, all, "get", "myresource", "team-b-resource", "-o", "jsonpath={.spec.name}"); got != "Team B ML Resource" {
			t.Fatalf("spec.name of team-b's object read in all mode = %q", got)
		}

		// Writing another's object in all mode does not make it the
		// writer's: every write shape keeps team-b the owner, and team-b
		// keeps seeing and writing its object.
		for _, args := range [][]string{
			{"annotate", "myresource", "team-b-resource", "touched=by-all"},
			{"label", "myresource", "team-b-resource", "vcluster.com/owner-vcluster=client", "--overwrite"},
			{"label", "myresource", "team-b-resource", "vcluster.com/owner-vcluster-"},
			{"patch", "myresource", "team-b-resource", "--type=json", `-p=[{"op":"replace","path":"/metadata/labels","value":{"vcluster.com/owner-vcluster":"client"}}]`},
			{"patch", "myresource", "team-b-resource", "--type=merge", `-p={"metadata":{"labels":null},"spec":{"priority":"low"}}`},
		} {
			kubectl(t, ctx, all, args...)
			wantOwner(t, objectLabels(t, ctx, target, "default", "team-b-resource"), "team-b")
		}
		applied := kubectlStdin(t, ctx, all, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: team-b-resource\n  labels: {vcluster.com/owner-vcluster: client}\nspec:\n  name: applied by all\n",
			"apply", "--server-side", "--force-conflicts", "--field-manager=all-client", "-f", "-")
		if !strings.Contains(applied, "serverside-applied") {
			t.Fatalf("server-side apply in all mode: %s", applied)
		}
		wantOwner(t, objectLabels(t, ctx, target, "default", "team-b-resource"), "team-b")
		wantNames(t, names(t, ctx, teamB), "team-b-resource")
		kubectl(t, ctx, teamB, "annotate", "myresource", "team-b-resource", "still=mine")
	})

	t.Run("deletecollection deletes only the caller's objects", func(t *testing.T) {
		kubectlApplyOut(t, ctx, teamA, strings.Replace(teamResource("team-a", "second"), "team-a-resource", "team-a-second", 1))
		status := clientRequest(t, ctx, teamA, "DELETE", "/apis/example.com/v1/namespaces/default/myresources", "", nil)
		if status.code != 200 {
			t.Fatalf("deletecollection: %d %s", status.code, status.body)
		}
		wantNames(t, names(t, ctx, target), "team-b-resource")
		wantNames(t, names(t, ctx, teamA))
		wantNames(t, names(t, ctx, teamB), "team-b-resource")
	})
}

// The documentation's multi-target example, with the second target in
// another project (its cross-project example): each group/version's
// writes land at its own target, under the client's identity.
func TestWriteMultiTargetCrossProject(t *testing.T) {
	ctx := testContext(t)
	targetA := clustertest.NewAPIServer(t, "target-a")
	targetB := clustertest.NewAPIServer(t, "target-b")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, targetA)
	installCRD(t, ctx, targetB, "otherresource-crd.yaml")
	cfg := crproxytest.Config("client", client, targetA)
	cfg.Targets = []config.Target{
		{Name: "target-a", Kubeconfig: targetA.KubeconfigPath},
		{Name: "target-b", Project: "other-project", Kubeconfig: targetB.KubeconfigPath},
	}
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"myresources.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target-a"}},
		"otherresources.test.io/v2":  {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target-b", Project: "other-project"}},
	}
	startProxy(t, client, cfg)
	kubectlApplyOut(t, ctx, client, testResource)
	kubectlApplyOut(t, ctx, client, `apiVersion: test.io/v2
kind: OtherResource
metadata:
  name: other-resource
  namespace: default
spec:
  name: "Stored in another project"
`)
	wantNames(t, names(t, ctx, targetA), "test-resource")
	if out := kubectl(t, ctx, targetB, "get", "otherresources", "-o", "name"); out != "otherresource.test.io/other-resource" {
		t.Fatalf("target-b holds %q", out)
	}
	if out := kubectl(t, ctx, client, "get", "otherresources", "-o", "name"); out != "otherresource.test.io/other-resource" {
		t.Fatalf("the client lists %q", out)
	}
	labels := kubectl(t, ctx, targetB, "get", "otherresource", "other-resource", "-o", "jsonpath={.metadata.labels}")
	if !strings.Contains(labels, `"vcluster.com/owner-project":"default"`) || !strings.Contains(labels, `"vcluster.com/owner-vcluster":"client"`) {
		t.Fatalf("owner labels at the cross-project target: %s", labels)
	}
	kubectl(t, ctx, client, "delete", "otherresource", "other-resource")
	if out := kubectl(t, ctx, targetB, "get", "otherresources", "-o", "name"); out != "" {
		t.Fatalf("target-b still holds %q after the delete", out)
	}
}
