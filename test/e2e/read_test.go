package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// prepareTarget installs the documentation's CRD and target RBAC.
func prepareTarget(t *testing.T, ctx context.Context, target *localcluster.APIServer) {
	t.Helper()
	installCRD(t, ctx, target, "myresource-crd.yaml")
	apply(t, ctx, target, "target-rbac.yaml", "multi-client-target-rbac.yaml")
}

// createAtTarget creates MyResources directly at the target (as its admin),
// with the owner labels of owner ("" for none) and extra labels.
func createAtTarget(t *testing.T, ctx context.Context, target *localcluster.APIServer, namespace, owner string, names []string, extra string) {
	t.Helper()
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "---\napiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n", name, namespace)
		if owner != "" {
			fmt.Fprintf(&b, "    vcluster.com/owner-vcluster: %s\n    vcluster.com/owner-project: default\n", owner)
		}
		if extra != "" {
			fmt.Fprintf(&b, "    %s\n", extra)
		}
		fmt.Fprintf(&b, "spec:\n  name: %q\n  priority: high\n", name)
	}
	if _, err := target.Kubectl(ctx, "create", "namespace", namespace); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	kubectlApply(t, ctx, target, b.String())
}

// names runs kubectl get -o name and returns the sorted names.
func names(t *testing.T, ctx context.Context, s *localcluster.APIServer, args ...string) []string {
	t.Helper()
	out := kubectl(t, ctx, s, append([]string{"get", "myresources", "-o", "name"}, args...)...)
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "Warning:") {
			got = append(got, strings.TrimPrefix(line, "myresource.example.com/"))
		}
	}
	sort.Strings(got)
	return got
}

func wantNames(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// The documentation's scenario: objects created at the target with this
// client's owner labels are exactly what `kubectl get myresources` lists in
// the client cluster, also after crproxy restarts while the target is down.
func TestReadListsOwnedObjectsAndSurvivesRestartWithTargetDown(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "default", "client", []string{"mine-1", "mine-2", "mine-3"}, "")
	createAtTarget(t, ctx, target, "default", "team-b", []string{"theirs"}, "")
	createAtTarget(t, ctx, target, "default", "", []string{"unowned"}, "")

	p := startProxy(t, client, crproxytest.Config("client", client, target))
	wantNames(t, names(t, ctx, client), "mine-1", "mine-2", "mine-3")
	table := kubectl(t, ctx, client, "get", "myresources")
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(strings.Split(table, "\n")[0], "AGE") || !strings.Contains(table, "mine-2") {
		t.Fatalf("kubectl get printed:\n%s\nwant a NAME/AGE table", table)
	}

	stopProxy(t, p)
	target.Stop()
	p.Restart(t)
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := client.Kubectl(ctx, "get", "myresources", "-o", "name")
		if err == nil {
			got = nil
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "Warning:") && line != "" {
					got = append(got, strings.TrimPrefix(line, "myresource.example.com/"))
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the target down, kubectl get failed: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	sort.Strings(got)
	wantNames(t, got, "mine-1", "mine-2", "mine-3")
	if err := target.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// kubectl's read verbs against the mirror: namespaces, selectors, yaml, and
// that a caller's selector cannot widen the owner filter.
func TestReadKubectlVerbs(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "verbs-a", "client", []string{"a-1"}, "tier: gold")
	createAtTarget(t, ctx, target, "verbs-a", "client", []string{"a-2"}, "")
	createAtTarget(t, ctx, target, "verbs-b", "client", []string{"b-1"}, "")
	createAtTarget(t, ctx, target, "verbs-b", "team-b", []string{"b-other"}, "tier: gold")
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	// kubectl reports a missing namespace instead of a missing object.
	kubectl(t, ctx, client, "create", "namespace", "verbs-a")
	kubectl(t, ctx, client, "create", "namespace", "verbs-b")

	wantNames(t, names(t, ctx, client, "-n", "verbs-a"), "a-1", "a-2")
	all := names(t, ctx, client, "-A")
	for _, n := range []string{"a-1", "a-2", "b-1"} {
		if !contains(all, n) {
			t.Fatalf("get -A lists %q, missing %s", all, n)
		}
	}
	if contains(all, "b-other") {
		t.Fatalf("get -A shows another client's object: %q", all)
	}
	wantNames(t, names(t, ctx, client, "-A", "-l", "tier=gold"), "a-1")
	wantNames(t, names(t, ctx, client, "-n", "verbs-a", "--field-selector", "metadata.name=a-2"), "a-2")
	wantNames(t, names(t, ctx, client, "-A", "-l", "vcluster.com/owner-vcluster!=client"))
	wantNames(t, names(t, ctx, client, "-A", "-l", "vcluster.com/owner-vcluster=team-b"))

	// -o yaml is the target's object.
	var viaProxy, atTarget map[string]any
	if err := json.Unmarshal([]byte(kubectl(t, ctx, client, "get", "myresource", "a-1", "-n", "verbs-a", "-o", "json")), &viaProxy); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(kubectl(t, ctx, target, "get", "myresource", "a-1", "-n", "verbs-a", "-o", "json")), &atTarget); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(viaProxy)
	b, _ := json.Marshal(atTarget)
	if string(a) != string(b) {
		t.Fatalf("object through crproxy differs from the target's:\n%s\n%s", a, b)
	}

	// Another client's object is not found, exactly like a missing one.
	out, err := client.Kubectl(ctx, "get", "myresource", "b-other", "-n", "verbs-b")
	if err == nil || !strings.Contains(out, `myresources.example.com "b-other" not found`) {
		t.Fatalf("get of another client's object: %q (err %v); want NotFound", out, err)
	}
	// Straight to crproxy: no credentials is 401; a client certificate of
	// the client cluster's CA is accepted, and authorized by the client
	// cluster's RBAC (see security_test.go for the refusals).
	url := p.URL() + "/apis/example.com/v1/namespaces/verbs-a/myresources"
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := anonymous.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"reason":"Unauthorized"`) {
		t.Fatalf("anonymous request: %d %s; want 401 Unauthorized", resp.StatusCode, body)
	}
	userCfg, err := client.ConfigFor("some-user")
	if err != nil {
		t.Fatal(err)
	}
	userCfg.Host, userCfg.CAData, userCfg.Insecure = p.URL(), nil, true
	hc, err := rest.HTTPClientFor(userCfg)
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, ctx, client, "create", "role", "reader", "-n", "verbs-a", "--verb=list", "--resource=myresources.example.com")
	kubectl(t, ctx, client, "create", "rolebinding", "reader", "-n", "verbs-a", "--role=reader", "--user=some-user")
	// The client apiserver's RBAC follows its informers, and a refusal
	// is cached for 10 s.
	crproxytest.Eventually(t, ctx, 20*time.Second, func() string {
		resp, err := hc.Get(url)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("client-certificate request: %d, want 200", resp.StatusCode)
		}
		return ""
	})

	// An unsupported field selector is a 400, as for any CRD.
	out, err = client.Kubectl(ctx, "get", "myresources", "-A", "--field-selector", "spec.name=x")
	if err == nil || !strings.Contains(out, "field label not supported: spec.name") {
		t.Fatalf("unsupported field selector: %q (err %v)", out, err)
	}
}
