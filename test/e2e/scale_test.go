package e2e

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// scalableCRD has the scale subresource, as workloads' CRDs do, and the
// client identity may use it.
var scalableCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: scalables.scale.example.com
spec:
  group: scale.example.com
  names:
    kind: Scalable
    listKind: ScalableList
    plural: scalables
    singular: scalable
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
` + "---\n" + crproxytest.ClientRBAC("scalables-client",
	rbacv1.PolicyRule{APIGroups: []string{"scale.example.com"}, Resources: []string{"scalables", "scalables/status", "scalables/scale"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	crproxytest.NamespacesRule)

// The scale subresource of a proxied resource works as the target serves
// it: discovery lists it as the target does; kubectl scale (with and
// without --current-replicas), get --subresource=scale and patch
// --subresource=scale (merge and JSON) through the client change and read
// the object at the target; client-go's scale client, as a
// HorizontalPodAutoscaler uses it, reads and updates it; and another
// client's object answers 404 with nothing changed.
func TestScaleSubresource(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	kubectlApply(t, ctx, target, scalableCRD)
	kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/scalables.scale.example.com")
	kubectl(t, ctx, target, "create", "namespace", "scaling")
	kubectlApply(t, ctx, target, `{"apiVersion":"scale.example.com/v1","kind":"Scalable","metadata":{"name":"other","namespace":"scaling","labels":{"vcluster.com/owner-vcluster":"team-b","vcluster.com/owner-project":"default"}},"spec":{"replicas":1}}`)
	cfg := crproxytest.Config("client", client, target)
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"scalables.scale.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}, AccessResources: config.AccessOwned},
	}
	startProxy(t, client, cfg)
	kubectl(t, ctx, client, "create", "namespace", "scaling")
	kubectlApply(t, ctx, client, `{"apiVersion":"scale.example.com/v1","kind":"Scalable","metadata":{"name":"s1","namespace":"scaling"},"spec":{"replicas":1}}`)
	replicasAtTarget := func(name string) string {
		return kubectl(t, ctx, target, "get", "scalables", name, "-n", "scaling", "-o", "jsonpath={.spec.replicas}")
	}

	t.Run("discovery lists scale as the target does", func(t *testing.T) {
		tgt := newEndpoint(t, "target", target.RESTConfig())
		cli := newEndpoint(t, "client apiserver", client.RESTConfig())
		_, v := aggregatedVersion(t, ctx, tgt, "scale.example.com", "v1")
		want := resourceEntry(v, "scalables")
		if want == nil || len(want.Subresources) != 2 {
			t.Fatalf("the target's scalables entry: %s", jsonString(want))
		}
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			_, v := aggregatedVersion(t, ctx, cli, "scale.example.com", "v1")
			if got := resourceEntry(v, "scalables"); !reflect.DeepEqual(got, want) {
				return fmt.Sprintf("the client's scalables entry\n%s\nwant the target's\n%s", jsonString(got), jsonString(want))
			}
			return ""
		})
		legacyTarget := kubectl(t, ctx, target, "get", "--raw", "/apis/scale.example.com/v1")
		legacyClient := kubectl(t, ctx, client, "get", "--raw", "/apis/scale.example.com/v1")
		if legacyClient != legacyTarget {
			t.Fatalf("the client's legacy discovery\n%s\nwant the target's\n%s", legacyClient, legacyTarget)
		}
	})

	t.Run("kubectl scale and get --subresource=scale", func(t *testing.T) {
		kubectl(t, ctx, client, "scale", "scalables", "s1", "-n", "scaling", "--replicas=3")
		if got := replicasAtTarget("s1"); got != "3" {
			t.Fatalf("after kubectl scale --replicas=3 the target has %s replicas", got)
		}
		viaClient := kubectl(t, ctx, client, "get", "scalables", "s1", "-n", "scaling", "--subresource=scale", "-o", "json")
		atTarget := kubectl(t, ctx, target, "get", "scalables", "s1", "-n", "scaling", "--subresource=scale", "-o", "json")
		if viaClient != atTarget {
			t.Fatalf("the Scale through the client\n%s\nat the target\n%s", viaClient, atTarget)
		}
		kubectl(t, ctx, client, "scale", "scalables", "s1", "-n", "scaling", "--current-replicas=3", "--replicas=5")
		if got := replicasAtTarget("s1"); got != "5" {
			t.Fatalf("after kubectl scale --current-replicas=3 --replicas=5 the target has %s replicas", got)
		}
		out, err := client.Kubectl(ctx, "scale", "scalables", "s1", "-n", "scaling", "--current-replicas=4", "--replicas=6")
		native, nerr := target.Kubectl(ctx, "scale", "scalables", "s1", "-n", "scaling", "--current-replicas=4", "--replicas=6")
		if err == nil || nerr == nil || out != native {
			t.Fatalf("kubectl scale with a wrong --current-replicas: %v\n%s\nat the target: %v\n%s", err, out, nerr, native)
		}
		if got := replicasAtTarget("s1"); got != "5" {
			t.Fatalf("a refused kubectl scale left %s replicas", got)
		}
	})

	t.Run("patch --subresource=scale", func(t *testing.T) {
		kubectl(t, ctx, client, "patch", "scalables", "s1", "-n", "scaling", "--subresource=scale", "--type=merge", "-p", `{"spec":{"replicas":2}}`)
		if got := replicasAtTarget("s1"); got != "2" {
			t.Fatalf("after a merge patch of the Scale the target has %s replicas", got)
		}
		kubectl(t, ctx, client, "patch", "scalables", "s1", "-n", "scaling", "--subresource=scale", "--type=json", "-p", `[{"op":"replace","path":"/spec/replicas","value":4}]`)
		if got := replicasAtTarget("s1"); got != "4" {
			t.Fatalf("after a JSON patch of the Scale the target has %s replicas", got)
		}
		if got := kubectl(t, ctx, target, "get", "scalables", "s1", "-n", "scaling", "-o", "jsonpath={.metadata.labels.vcluster\\.com/owner-vcluster}"); got != "client" {
			t.Fatalf("s1's owner label at the target after scaling: %q", got)
		}
	})

	t.Run("client-go's scale client, as an HPA uses it", func(t *testing.T) {
		scales := scaleClient(t, client)
		gr := schema.GroupResource{Group: "scale.example.com", Resource: "scalables"}
		s, err := scales.Scales("scaling").Get(ctx, gr, "s1", metav1.GetOptions{})
		if err != nil || s.Spec.Replicas != 4 {
			t.Fatalf("Get: %+v %v", s, err)
		}
		s.Spec.Replicas = 7
		if _, err := scales.Scales("scaling").Update(ctx, gr, s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if got := replicasAtTarget("s1"); got != "7" {
			t.Fatalf("after the scale client's update the target has %s replicas", got)
		}
		// The resourceVersion read is a precondition: a stale one conflicts.
		if _, err := scales.Scales("scaling").Update(ctx, gr, s, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "the object has been modified") {
			t.Fatalf("Update with a stale resourceVersion: %v, want a conflict", err)
		}
		// Without one, the update applies to whatever version is there.
		s.ResourceVersion, s.Spec.Replicas = "", 8
		if _, err := scales.Scales("scaling").Update(ctx, gr, s, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Update without a resourceVersion: %v", err)
		}
		if got := replicasAtTarget("s1"); got != "8" {
			t.Fatalf("after an update without a resourceVersion the target has %s replicas", got)
		}
	})

	t.Run("another client's object is not found", func(t *testing.T) {
		for _, args := range [][]string{
			{"get", "scalables", "other", "-n", "scaling", "--subresource=scale"},
			{"scale", "scalables", "other", "-n", "scaling", "--replicas=9"},
			{"patch", "scalables", "other", "-n", "scaling", "--subresource=scale", "--type=merge", "-p", `{"spec":{"replicas":9}}`},
		} {
			out, err := client.Kubectl(ctx, args...)
			if err == nil || !strings.Contains(out, `scalables.scale.example.com "other" not found`) {
				t.Errorf("kubectl %s: %v\n%s\nwant NotFound", strings.Join(args, " "), err, out)
			}
		}
		scales := scaleClient(t, client)
		gr := schema.GroupResource{Group: "scale.example.com", Resource: "scalables"}
		if _, err := scales.Scales("scaling").Get(ctx, gr, "other", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), `"other" not found`) {
			t.Errorf("the scale client's Get of another client's object: %v, want NotFound", err)
		}
		s, err := scales.Scales("scaling").Get(ctx, gr, "s1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Name, s.ResourceVersion, s.UID, s.Spec.Replicas = "other", "", "", 9
		if _, err := scales.Scales("scaling").Update(ctx, gr, s, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), `"other" not found`) {
			t.Errorf("the scale client's Update of another client's object: %v, want NotFound", err)
		}
		if got := replicasAtTarget("other"); got != "1" {
			t.Fatalf("another client's object has %s replicas at the target, want 1", got)
		}
	})
}

// scaleClient is client-go's scale client for s, built as the
// HorizontalPodAutoscaler controller builds it: from discovery.
func scaleClient(t *testing.T, s *localcluster.APIServer) scale.ScalesGetter {
	t.Helper()
	cfg := s.RESTConfig()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	scales, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(cached))
	if err != nil {
		t.Fatal(err)
	}
	return scales
}
