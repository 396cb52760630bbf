package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/pkg/config"
)

// propagationGroup is the group B8's CRDs live in, proxied by a wildcard
// key; propagationAnchorCRD keeps one resource in it throughout.
const propagationGroup = "propagation.example.com"

// propagationRBAC lets the client identity use propagationGroup at the
// target.
var propagationRBAC = crproxytest.ClientRBAC("bench-propagation",
	rbacv1.PolicyRule{APIGroups: []string{propagationGroup}, Resources: []string{"*"}, Verbs: []string{"*"}})

// propagationCRD is a namespaced CRD of propagationGroup for plural.
func propagationCRD(plural string, shortNames ...string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]s.%[2]s
spec:
  group: %[2]s
  names:
    kind: K%[1]s
    plural: %[1]s
    shortNames: [%[3]s]
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, plural, propagationGroup, strings.Join(shortNames, ","))
}

// withPropagationGroup installs B8's anchor CRD and RBAC at the target
// and adds the wildcard key to cfg.
func withPropagationGroup(t *testing.T, ctx context.Context, e *benchEnv, cfg *config.Config) {
	if out, err := crproxytest.ApplyYAML(ctx, e.target, propagationRBAC+"---\n"+propagationCRD("anchors")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := e.target.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd/anchors."+propagationGroup); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cfg.Experimental.Proxy.CustomResources["*."+propagationGroup+"/v1"] = config.CustomResourceProxy{
		Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName},
	}
}

// benchPropagation (B8) creates a CRD at the target, adds a short name to
// it, and deletes it, bench.crd-rounds times, and measures each time how
// long until the change shows in the aggregated discovery (GET /apis) of
// the target itself (what a native CRD takes), of crproxy straight, and of
// the client kube-apiserver (what users and controllers see), each polled
// every 20 ms from the moment the target acknowledged the change. Bar: p99
// through the client ≤ 2 s.
func benchPropagation(t *testing.T, ctx context.Context, e *benchEnv, r *report) {
	watched := []struct {
		path int
		cfg  *rest.Config
	}{{pathTarget, e.target.RESTConfig()}, {pathCrproxy, e.direct()}, {pathViaClient, e.client.RESTConfig()}}
	clients := make([]*http.Client, len(watched))
	for i, w := range watched {
		hc, err := rest.HTTPClientFor(w.cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = hc
	}
	type phase struct {
		name  string
		apply func(plural string) error
		shown func(*apidiscoveryv2.APIResourceDiscovery) bool
	}
	phases := []phase{
		{"CRD created", func(p string) error { return kubectlApplyYAML(ctx, e, propagationCRD(p)) },
			func(d *apidiscoveryv2.APIResourceDiscovery) bool { return d != nil }},
		{"CRD changed (short name added)", func(p string) error { return kubectlApplyYAML(ctx, e, propagationCRD(p, "sn"+p)) },
			func(d *apidiscoveryv2.APIResourceDiscovery) bool { return d != nil && len(d.ShortNames) == 1 }},
		{"CRD deleted", func(p string) error {
			out, err := e.target.Kubectl(ctx, "delete", "crd", p+"."+propagationGroup, "--wait=false")
			if err != nil {
				return fmt.Errorf("%v\n%s", err, out)
			}
			return nil
		}, func(d *apidiscoveryv2.APIResourceDiscovery) bool { return d == nil }},
	}
	took := make([][][]time.Duration, len(phases)) // [phase][watched][round]
	for i := range took {
		took[i] = make([][]time.Duration, len(watched))
	}
	for round := range *flagCRDRounds {
		plural := fmt.Sprintf("props%d", round)
		for pi, ph := range phases {
			if err := ph.apply(plural); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var wg sync.WaitGroup
			for wi := range watched {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := untilShown(ctx, clients[wi], watched[wi].cfg.Host, plural, ph.shown, start)
					if err != nil {
						t.Errorf("%s, %s, %s: %v", ph.name, plural, e.paths[watched[wi].path].name, err)
					}
					took[pi][wi] = append(took[pi][wi], d)
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
		}
	}
	for pi, ph := range phases {
		for _, p := range []float64{50, 99} {
			f := unmeasured()
			for wi, w := range watched {
				f[w.path] = float64(percentile(took[pi][wi], p)) / float64(time.Millisecond)
			}
			rw := row{ID: "B8", Case: ph.name, Metric: fmt.Sprintf("until the aggregated discovery shows it, p%.0f", p), Unit: "ms"}
			if p == 99 {
				rw = barAbsolute(rw, "through the client ≤ 2 s", f[pathViaClient] <= 2000)
			}
			r.add(rw, f)
		}
	}
	r.note("B8: %d rounds of a CRD created, changed and deleted at the target; each side's GET /apis (aggregated discovery) polled every 20 ms from the moment the target acknowledged the change. The target column is the target's own discovery: what a native CRD takes.", *flagCRDRounds)
}

// kubectlApplyYAML applies manifest at the target.
func kubectlApplyYAML(ctx context.Context, e *benchEnv, manifest string) error {
	if out, err := crproxytest.ApplyYAML(ctx, e.target, manifest); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// untilShown polls host's aggregated discovery every 20 ms until the
// entry of plural in propagationGroup/v1 satisfies shown, and returns the
// time since start.
func untilShown(ctx context.Context, hc *http.Client, host, plural string, shown func(*apidiscoveryv2.APIResourceDiscovery) bool, start time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		entry, err := discoveredResource(ctx, hc, host, plural)
		if err == nil && shown(entry) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("not shown after 30 s (last error %v)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// discoveredResource returns plural's entry in host's aggregated discovery
// of propagationGroup/v1, or nil.
func discoveredResource(ctx context.Context, hc *http.Client, host, plural string) (*apidiscoveryv2.APIResourceDiscovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(host, "/")+"/apis", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /apis: %s", resp.Status)
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	for _, g := range list.Items {
		if g.Name != propagationGroup {
			continue
		}
		for _, v := range g.Versions {
			if v.Version != "v1" {
				continue
			}
			for i := range v.Resources {
				if v.Resources[i].Resource == plural {
					return &v.Resources[i], nil
				}
			}
		}
	}
	return nil, nil
}
