package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// A wildcard key mirrors every resource the target's discovery lists for
// its group/version: both CRDs of example.com/v1 appear in the client's
// discovery, and kubectl get lists the owned objects of both, and only
// those.
func TestReadFeaturesWildcardKeys(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	installCRD(t, ctx, target, "secondaryresource-crd.yaml")
	apply(t, ctx, target, "secondaryresource-target-rbac.yaml")
	createAtTarget(t, ctx, target, "wild", "client", []string{"my-1", "my-2"}, "")
	createAtTarget(t, ctx, target, "wild", "team-b", []string{"my-other"}, "")
	createSecondaryAtTarget(t, ctx, target, "wild", "client", "second-1", "second-2")
	createSecondaryAtTarget(t, ctx, target, "wild", "team-b", "second-other")
	createSecondaryAtTarget(t, ctx, target, "wild", "", "second-unowned")

	cfg := crproxytest.Config("client", client, target)
	cfg.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"*.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}},
	}
	startProxy(t, client, cfg)
	kubectl(t, ctx, client, "create", "namespace", "wild")

	t.Run("api-resources lists both resources", func(t *testing.T) {
		want := "myresources.example.com,secondaryresources.example.com"
		// startProxy waited for the group; the aggregator may publish its
		// resources a moment apart.
		var got string
		deadline := time.Now().Add(30 * time.Second)
		for {
			got = strings.Join(outputLines(kubectl(t, ctx, client, "api-resources", "--api-group=example.com", "-o", "name")), ",")
			if got == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if got != want {
			t.Fatalf("kubectl api-resources --api-group=example.com lists %q, want %q", got, want)
		}
		table := kubectl(t, ctx, client, "api-resources", "--api-group=example.com")
		if !regexp.MustCompile(`(?m)^secondaryresources\s+example\.com/v1\s+true\s+SecondaryResource$`).MatchString(table) {
			t.Fatalf("kubectl api-resources printed:\n%s\nwant secondaryresources, example.com/v1, namespaced, SecondaryResource", table)
		}
	})

	t.Run("get lists the owned objects of both", func(t *testing.T) {
		got := outputLines(kubectl(t, ctx, client, "get", "myresources,secondaryresources", "-n", "wild", "-o", "name"))
		want := []string{
			"myresource.example.com/my-1",
			"myresource.example.com/my-2",
			"secondaryresource.example.com/second-1",
			"secondaryresource.example.com/second-2",
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("kubectl get myresources,secondaryresources -n wild lists %q, want %q", got, want)
		}
		size := kubectl(t, ctx, client, "get", "secondaryresource", "second-2", "-n", "wild", "-o", "jsonpath={.spec.size}")
		if size != "2" {
			t.Fatalf("second-2 has spec.size %q through crproxy, want 2", size)
		}
		out, err := client.Kubectl(ctx, "get", "secondaryresource", "second-other", "-n", "wild")
		if err == nil || !strings.Contains(out, `secondaryresources.example.com "second-other" not found`) {
			t.Fatalf("get of another client's SecondaryResource: %q (err %v); want NotFound", out, err)
		}
	})
}

// kubectl explain shows the CRD's schema (fields and descriptions) through
// crproxy's OpenAPI v3 and v2 passthrough, as at the target. Tables: kubectl
// get prints the CRD's additionalPrinterColumns, as at the target, when the
// client identity may read the CRD there, and NAME/AGE when it may not.
func TestReadFeaturesExplainAndPrinterColumns(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	installCRD(t, ctx, target, "myresource-crd-columns.yaml")
	apply(t, ctx, target, "target-rbac.yaml")
	createAtTarget(t, ctx, target, "columns", "client", []string{"col-1", "col-2"}, "")
	createAtTarget(t, ctx, target, "columns", "team-b", []string{"col-other"}, "")
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	kubectl(t, ctx, client, "create", "namespace", "columns")

	// What the target prints for the same objects.
	atTarget := kubectlTable(t, ctx, target, "get", "myresources", "-n", "columns", "-l", "vcluster.com/owner-vcluster=client")
	if got := strings.Join(atTarget[0], ","); got != "NAME,PRIORITY,DISPLAY NAME,AGE" {
		t.Fatalf("the target prints the header %q; the CRD's columns are NAME,PRIORITY,DISPLAY NAME,AGE", got)
	}

	t.Run("explain", func(t *testing.T) {
		// The client's aggregator collects crproxy's OpenAPI asynchronously
		// once the APIService is available.
		deadline := time.Now().Add(30 * time.Second)
		for _, args := range [][]string{
			{"explain", "myresources"},
			{"explain", "myresources", "--output=plaintext-openapiv2"},
		} {
			for {
				out, err := client.Kubectl(ctx, args...)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("kubectl %s kept failing: %v\n%s", strings.Join(args, " "), err, out)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		for _, args := range [][]string{
			{"explain", "myresources"},
			{"explain", "myresources.spec"},
			{"explain", "myresources.spec", "--output=plaintext-openapiv2"},
		} {
			out := kubectl(t, ctx, client, args...)
			if want := kubectl(t, ctx, target, args...); out != want {
				t.Fatalf("kubectl %s in the client prints:\n%s\nat the target:\n%s", strings.Join(args, " "), out, want)
			}
			if !strings.Contains(out, "KIND:       MyResource") && !strings.Contains(out, "KIND:     MyResource") {
				t.Fatalf("kubectl %s prints:\n%s\nwant KIND MyResource", strings.Join(args, " "), out)
			}
		}
		out := kubectl(t, ctx, client, "explain", "myresources")
		for _, want := range []string{
			"MyResource is the Resource Proxy documentation's example resource.",
			"spec\t<Object>",
			"Spec is what the owner of the MyResource asks for.",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("kubectl explain myresources prints:\n%s\nwant %q", out, want)
			}
		}
		out = kubectl(t, ctx, client, "explain", "myresources.spec")
		for _, want := range []string{
			"priority\t<string>",
			"Priority orders the work on the resource, e.g. high or low.",
			"name\t<string>",
			"Name is a human-readable name of the resource.",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("kubectl explain myresources.spec prints:\n%s\nwant %q", out, want)
			}
		}
	})

	t.Run("NAME and AGE without read access to the CRD", func(t *testing.T) {
		if out, _ := target.Kubectl(ctx, "auth", "can-i", "get", "customresourcedefinitions", "--as", "loft:vcluster:p-default:client"); !strings.HasSuffix(strings.TrimSpace(out), "\nno") {
			t.Fatalf("the client identity may read CRDs at the target already: %q", out)
		}
		rows := kubectlTable(t, ctx, client, "get", "myresources", "-n", "columns")
		if got := strings.Join(rows[0], ","); got != "NAME,AGE" {
			t.Fatalf("kubectl get prints the header %q, want NAME,AGE", got)
		}
		if len(rows) != 3 || rows[1][0] != "col-1" || rows[2][0] != "col-2" {
			t.Fatalf("kubectl get prints rows %q, want col-1 and col-2", rows[1:])
		}
	})

	t.Run("the CRD's columns with read access to the CRD", func(t *testing.T) {
		apply(t, ctx, target, "target-rbac-crd-reader.yaml")
		// crproxy keeps a resource's columns for a minute; a restart reads
		// the CRD afresh.
		stopProxy(t, p)
		p.Restart(t)
		rows := kubectlTable(t, ctx, client, "get", "myresources", "-n", "columns")
		if got, want := strings.Join(rows[0], ","), strings.Join(atTarget[0], ","); got != want {
			t.Fatalf("kubectl get prints the header %q, want the target's %q", got, want)
		}
		if len(rows) != len(atTarget) {
			t.Fatalf("kubectl get prints %q, the target %q", rows, atTarget)
		}
		for i := 1; i < len(rows); i++ {
			// All but AGE, which may have moved on by a second.
			got, want := rows[i][:len(rows[i])-1], atTarget[i][:len(atTarget[i])-1]
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("kubectl get prints the row %q, the target %q", rows[i], atTarget[i])
			}
		}
		if rows[1][0] != "col-1" || rows[1][1] != "high" || rows[1][2] != "col-1" {
			t.Fatalf("kubectl get prints the row %q, want col-1 high col-1", rows[1])
		}
	})
}

// Besides the aggregator's front-proxy certificate, crproxy accepts a
// bearer token that the client cluster's TokenReview accepts, authorized
// by the client cluster's RBAC as it would be through the aggregator
// (security_test.go has the refusals), and answers 401 to any other token.
func TestReadFeaturesBearerTokens(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "features-token", "client", []string{"tok-1", "tok-2"}, "")
	createAtTarget(t, ctx, target, "features-token", "team-b", []string{"tok-other"}, "")
	p := startProxy(t, client, crproxytest.Config("client", client, target))

	kubectl(t, ctx, client, "create", "serviceaccount", "reader", "-n", "default")
	token := kubectl(t, ctx, client, "create", "token", "reader", "-n", "default")
	// A token from another cluster: well-formed, same issuer, other key.
	if _, err := target.Kubectl(ctx, "create", "serviceaccount", "features-token-reader", "-n", "default"); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	foreign := kubectl(t, ctx, target, "create", "token", "features-token-reader", "-n", "default")

	url := p.URL() + "/apis/example.com/v1/namespaces/features-token/myresources"
	get := func(t *testing.T, token string) (int, []byte) {
		t.Helper()
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		a := send(t, hc, req)
		return a.code, a.body
	}

	t.Run("a client cluster's service account token without RBAC is forbidden", func(t *testing.T) {
		if code, body := get(t, token); code != http.StatusForbidden {
			t.Fatalf("with a service account token: %d %s; want 403", code, body)
		}
	})
	listsStraight := func(t *testing.T) string {
		code, body := get(t, token)
		if code != http.StatusOK {
			return fmt.Sprintf("with a service account token: %d %s; want 200", code, body)
		}
		var list struct {
			Kind  string `json:"kind"`
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Sprintf("%v: %s", err, body)
		}
		var got []string
		for _, item := range list.Items {
			got = append(got, item.Metadata.Name)
		}
		sort.Strings(got)
		if list.Kind != "MyResourceList" || strings.Join(got, ",") != "tok-1,tok-2" {
			return fmt.Sprintf("with a service account token: kind %q, items %q; want a MyResourceList of tok-1, tok-2", list.Kind, got)
		}
		return ""
	}

	for _, tc := range []struct{ name, token string }{
		{"a garbage token is 401", "garbage"},
		{"an empty bearer token is 401", ""},
		{"a token with a wrong signature is 401", token[:len(token)-4] + "AAAA"},
		{"another cluster's token is 401", foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, tc.token)
			if code != http.StatusUnauthorized || !strings.Contains(string(body), `"reason":"Unauthorized"`) {
				if len(body) > 300 {
					body = append(body[:300], "..."...)
				}
				t.Fatalf("got %d %s; want 401 Unauthorized", code, body)
			}
		})
	}

	// Through the client cluster the same token is authorized by the
	// client's RBAC: forbidden until a Role grants the list.
	t.Run("through the client cluster its RBAC decides", func(t *testing.T) {
		kubectl(t, ctx, client, "create", "namespace", "features-token")
		cfg := &rest.Config{Host: client.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: client.CA.CertPEM}}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		myresources := dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "myresources"}).Namespace("features-token")
		if _, err := myresources.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("list as the service account without RBAC: %v; want Forbidden", err)
		}
		kubectl(t, ctx, client, "create", "role", "read-myresources", "-n", "features-token", "--verb=get,list", "--resource=myresources.example.com")
		kubectl(t, ctx, client, "create", "rolebinding", "reader", "-n", "features-token", "--role=read-myresources", "--serviceaccount=default:reader")
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			list, err := myresources.List(ctx, metav1.ListOptions{})
			if err == nil {
				got = nil
				for _, item := range list.Items {
					got = append(got, item.GetName())
				}
				sort.Strings(got)
				break
			}
			if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
				t.Fatalf("list as the service account with a Role: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if strings.Join(got, ",") != "tok-1,tok-2" {
			t.Fatalf("the service account lists %q through the client cluster, want tok-1, tok-2", got)
		}
	})

	// Straight at crproxy, the same Role lets the token list (once the
	// refusal cached above, 10 s at most, has expired).
	t.Run("with the Role, the token lists straight at crproxy", func(t *testing.T) {
		crproxytest.Eventually(t, ctx, 25*time.Second, func() string { return listsStraight(t) })
	})
}

// createSecondaryAtTarget creates SecondaryResources at the target (as its
// admin) with the owner labels of owner ("" for none); spec.size is the
// name's last digit, or 0.
func createSecondaryAtTarget(t *testing.T, ctx context.Context, target *localcluster.APIServer, namespace, owner string, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "---\napiVersion: example.com/v1\nkind: SecondaryResource\nmetadata:\n  name: %s\n  namespace: %s\n", name, namespace)
		if owner != "" {
			fmt.Fprintf(&b, "  labels:\n    vcluster.com/owner-vcluster: %s\n    vcluster.com/owner-project: default\n", owner)
		}
		size := 0
		if last := name[len(name)-1]; last >= '0' && last <= '9' {
			size = int(last - '0')
		}
		fmt.Fprintf(&b, "spec:\n  size: %d\n", size)
	}
	if _, err := target.Kubectl(ctx, "create", "namespace", namespace); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	kubectlApply(t, ctx, target, b.String())
}

// outputLines returns kubectl's output lines without warnings, sorted.
func outputLines(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "Warning:") {
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return lines
}

// kubectlTable runs kubectl (get) and splits its table into cells: columns
// are separated by at least two spaces (a header may hold one). The first
// row is the header.
func kubectlTable(t *testing.T, ctx context.Context, s *localcluster.APIServer, args ...string) [][]string {
	t.Helper()
	out := kubectl(t, ctx, s, args...)
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "Warning:") {
			rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(line, -1))
		}
	}
	if len(rows) == 0 {
		t.Fatalf("kubectl %s printed no table: %q", strings.Join(args, " "), out)
	}
	return rows
}
