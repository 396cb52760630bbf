package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// discoveryCRD is the documentation's MyResource with what aggregated
// discovery describes besides names: short names, categories and the
// status subresource.
const discoveryCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: myresources.example.com
spec:
  group: example.com
  names:
    kind: MyResource
    listKind: MyResourceList
    plural: myresources
    singular: myresource
    shortNames: ["myr", "mres"]
    categories: ["example", "all"]
  scope: Namespaced
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
`

const acceptAggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// aggregatedVersion fetches /apis as aggregated discovery from e and
// returns the answer and the entry of group/version ("" if absent).
func aggregatedVersion(t *testing.T, ctx context.Context, e endpoint, group, version string) (answer, *apidiscoveryv2.APIVersionDiscovery) {
	t.Helper()
	a := e.get(t, ctx, "/apis", acceptAggregatedDiscovery)
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(a.body, &list); err != nil || a.code != http.StatusOK {
		t.Fatalf("%s: /apis: %d %v\n%s", e.name, a.code, err, a.body)
	}
	for _, g := range list.Items {
		if g.Name != group {
			continue
		}
		for _, v := range g.Versions {
			if v.Version == version {
				return a, &v
			}
		}
	}
	return a, nil
}

// The client cluster's merged aggregated discovery (GET /apis as
// apidiscovery.k8s.io/v2, and kubectl api-resources, which reads it)
// describes the proxied resource exactly as the target describes its CRD:
// verbs, short names, categories, singular name, kind, scope and the
// status subresource. crproxy serves that document itself, with the
// apiserver's headers, ETag and 304.
func TestAggregatedDiscoveryListsProxiedResources(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	kubectlApply(t, ctx, target, discoveryCRD)
	kubectl(t, ctx, target, "wait", "--for=condition=Established", "--timeout=60s", "crd/myresources.example.com")
	apply(t, ctx, target, "target-rbac.yaml")
	p := startProxy(t, client, crproxytest.Config("client", client, target))

	tgt := newEndpoint(t, "target", target.RESTConfig())
	targetAnswer, want := aggregatedVersion(t, ctx, tgt, "example.com", "v1")
	if want == nil || len(want.Resources) != 1 || len(want.Resources[0].Subresources) != 1 {
		t.Fatalf("the target's discovery of example.com/v1: %+v", want)
	}

	t.Run("crproxy", func(t *testing.T) {
		s := proxyEndpoint(t, p)
		a, got := aggregatedVersion(t, ctx, s, "example.com", "v1")
		if got == nil || !reflect.DeepEqual(*got, *want) {
			t.Fatalf("crproxy's example.com/v1:\n%s\nwant the target's\n%s", jsonString(got), jsonString(want))
		}
		for _, h := range []string{"Content-Type", "Vary", "Cache-Control"} {
			if a.header.Get(h) != targetAnswer.header.Get(h) {
				t.Errorf("%s: %q, the target's %q", h, a.header.Get(h), targetAnswer.header.Get(h))
			}
		}
		etag := a.header.Get("ETag")
		if len(etag) < 3 || etag[0] != '"' {
			t.Fatalf("ETag %q", etag)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/apis", nil)
		req.Header.Set("Accept", acceptAggregatedDiscovery)
		req.Header.Set("If-None-Match", etag)
		if r := send(t, s.hc, req); r.code != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", etag, r.code)
		}
		// Without the aggregated Accept, /apis is the legacy APIGroupList.
		legacy := s.get(t, ctx, "/apis", "application/json")
		if legacy.code != http.StatusOK || !strings.Contains(string(legacy.body), `"kind":"APIGroupList"`) {
			t.Errorf("legacy /apis: %d %s", legacy.code, legacy.body)
		}
	})

	t.Run("client apiserver", func(t *testing.T) {
		c := newEndpoint(t, "client apiserver", client.RESTConfig())
		// The aggregator refreshes an APIService's discovery when it
		// becomes available; give it a moment after startProxy.
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			a, got := aggregatedVersion(t, ctx, c, "example.com", "v1")
			if a.header.Get("Content-Type") != acceptAggregatedDiscovery {
				return "Content-Type " + a.header.Get("Content-Type")
			}
			if got == nil || !reflect.DeepEqual(*got, *want) {
				return fmt.Sprintf("the client's example.com/v1:\n%s\nwant the target's\n%s", jsonString(got), jsonString(want))
			}
			return ""
		})
	})

	t.Run("kubectl api-resources", func(t *testing.T) {
		line := func(out string) string {
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "myresources ") {
					return strings.Join(strings.Fields(l), " ")
				}
			}
			return ""
		}
		wantLine := line(kubectl(t, ctx, target, "api-resources", "--api-group=example.com", "-o", "wide"))
		if !strings.Contains(wantLine, "myr,mres") || !strings.Contains(wantLine, "example,all") {
			t.Fatalf("the target's kubectl api-resources: %q", wantLine)
		}
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			out, err := client.Kubectl(ctx, "api-resources", "--api-group=example.com", "-o", "wide")
			if got := line(out); err != nil || got != wantLine {
				return fmt.Sprintf("client: %q (%v)\nwant the target's %q", got, err, wantLine)
			}
			return ""
		})
		// Short names and categories resolve through the client cluster.
		kubectl(t, ctx, client, "get", "myr", "-A")
		kubectl(t, ctx, client, "get", "example", "-A")
	})
}
