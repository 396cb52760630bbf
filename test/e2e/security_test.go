package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
	"github.com/crproxy/crproxy/pkg/config"
)

// attacker is a caller of crproxy's port, straight (not through the
// aggregator), with whatever credential it holds.
type attacker struct {
	name string
	hc   *http.Client
	// token, when set, is sent as a bearer token.
	token string
	// base is where requests go: crproxy's URL or the client apiserver's.
	base string
}

// do sends one request with extra headers and reads the answer.
func (a attacker) do(t *testing.T, ctx context.Context, method, path string, body []byte, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return send(t, a.hc, req)
}

// serviceAccountToken creates the service account namespace/name in s and
// returns a token of it, as a pod of that service account would hold.
func serviceAccountToken(t *testing.T, ctx context.Context, s *localcluster.APIServer, namespace, name string) string {
	t.Helper()
	kube, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// selfSignedClient presents a certificate it signed itself for cn in
// organization org.
func selfSignedClient(t *testing.T, cn, org string) *http.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
}

// wantRefused checks an answer's code, its Status reason and (when set)
// its message.
func wantRefused(t *testing.T, what string, a answer, code int, reason metav1.StatusReason, message string) {
	t.Helper()
	if a.code != code {
		t.Errorf("%s: %d %s; want %d", what, a.code, a.body, code)
		return
	}
	st := a.status(t)
	if st.Reason != reason || (message != "" && st.Message != message) {
		t.Errorf("%s: reason %q, message %q; want %q, %q", what, st.Reason, st.Message, reason, message)
	}
}

// Callers that reach crproxy's port without the aggregator are authorized
// by the client cluster, for objects and for /metrics and /status, as
// kube-apiserver authorizes them: a pod's token or a user's certificate
// without RBAC reads nothing and changes nothing at the target, forged
// front-proxy and impersonation headers do not help, and a certificate
// crproxy's clients did not issue is not a caller at all.
func TestSecurityAuthorization(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	p := startProxy(t, client, crproxytest.Config("client", client, target))
	kubectl(t, ctx, client, "create", "namespace", "sec")
	kubectl(t, ctx, client, "create", "namespace", "sec-other")
	kubectlApply(t, ctx, client, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: victim\n  namespace: sec\nspec:\n  name: untouched\n")
	before := kubectl(t, ctx, target, "get", "myresources", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}@{.metadata.resourceVersion} {end}")

	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	pod := attacker{name: "service account token", hc: insecure, token: serviceAccountToken(t, ctx, client, "sec", "intruder"), base: p.URL()}
	malloryCfg, err := client.ConfigFor("mallory")
	if err != nil {
		t.Fatal(err)
	}
	malloryCfg.CAData, malloryCfg.Insecure = nil, true
	malloryHC, err := rest.HTTPClientFor(malloryCfg)
	if err != nil {
		t.Fatal(err)
	}
	mallory := attacker{name: "user certificate", hc: malloryHC, base: p.URL()}
	const (
		collection = "/apis/example.com/v1/namespaces/sec/myresources"
		object     = collection + "/victim"
	)
	podUser := "system:serviceaccount:sec:intruder"
	forbidden := func(verb, what string) string {
		return fmt.Sprintf(`myresources.example.com %sis forbidden: User %q cannot %s resource "myresources" in API group "example.com" in the namespace "sec"`, what, podUser, verb)
	}

	t.Run("a pod's token without RBAC", func(t *testing.T) {
		wantRefused(t, "list", pod.do(t, ctx, "GET", collection, nil), 403, metav1.StatusReasonForbidden, forbidden("list", ""))
		wantRefused(t, "get", pod.do(t, ctx, "GET", object, nil), 403, metav1.StatusReasonForbidden, forbidden("get", `"victim" `))
		wantRefused(t, "watch", pod.do(t, ctx, "GET", collection+"?watch=true", nil), 403, metav1.StatusReasonForbidden, forbidden("watch", ""))
		wantRefused(t, "delete", pod.do(t, ctx, "DELETE", object, nil), 403, metav1.StatusReasonForbidden, forbidden("delete", `"victim" `))
		wantRefused(t, "deletecollection", pod.do(t, ctx, "DELETE", collection, nil), 403, metav1.StatusReasonForbidden, forbidden("deletecollection", ""))
		wantRefused(t, "create", pod.do(t, ctx, "POST", collection, []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"planted"},"spec":{"name":"x"}}`)), 403, metav1.StatusReasonForbidden, forbidden("create", ""))
		wantRefused(t, "patch", pod.do(t, ctx, "PATCH", object, []byte(`{"spec":{"name":"pwned"}}`)), 403, metav1.StatusReasonForbidden, forbidden("patch", `"victim" `))
		wantRefused(t, "list across namespaces", pod.do(t, ctx, "GET", "/apis/example.com/v1/myresources", nil), 403, metav1.StatusReasonForbidden,
			fmt.Sprintf(`myresources.example.com is forbidden: User %q cannot list resource "myresources" in API group "example.com" at the cluster scope`, podUser))
		wantRefused(t, "/metrics", pod.do(t, ctx, "GET", "/metrics", nil), 403, metav1.StatusReasonForbidden, fmt.Sprintf(`forbidden: User %q cannot get path "/metrics"`, podUser))
		wantRefused(t, "/status", pod.do(t, ctx, "GET", "/status", nil), 403, metav1.StatusReasonForbidden, fmt.Sprintf(`forbidden: User %q cannot get path "/status"`, podUser))
	})

	t.Run("a user's certificate without RBAC", func(t *testing.T) {
		wantRefused(t, "list", mallory.do(t, ctx, "GET", collection, nil), 403, metav1.StatusReasonForbidden, "")
		wantRefused(t, "delete", mallory.do(t, ctx, "DELETE", object, nil), 403, metav1.StatusReasonForbidden, "")
	})

	t.Run("forged front-proxy and impersonation headers", func(t *testing.T) {
		forged := []string{"X-Remote-User", "system:admin", "X-Remote-Group", "system:masters"}
		wantRefused(t, "certificate with X-Remote-User", mallory.do(t, ctx, "DELETE", object, nil, forged...), 403, metav1.StatusReasonForbidden,
			`myresources.example.com "victim" is forbidden: User "mallory" cannot delete resource "myresources" in API group "example.com" in the namespace "sec"`)
		wantRefused(t, "token with X-Remote-User", pod.do(t, ctx, "DELETE", object, nil, forged...), 403, metav1.StatusReasonForbidden, forbidden("delete", `"victim" `))
		wantRefused(t, "token with Impersonate-User", pod.do(t, ctx, "DELETE", object, nil, "Impersonate-User", "system:admin", "Impersonate-Group", "system:masters"), 403, metav1.StatusReasonForbidden, forbidden("delete", `"victim" `))
	})

	t.Run("certificates crproxy's clients did not issue", func(t *testing.T) {
		for _, who := range []attacker{
			{name: "self-signed system:masters", hc: selfSignedClient(t, "system:admin", "system:masters"), base: p.URL()},
			{name: "self-signed front-proxy-client", hc: selfSignedClient(t, localcluster.FrontProxyClientName, ""), base: p.URL()},
		} {
			wantRefused(t, who.name, who.do(t, ctx, "DELETE", object, nil, "X-Remote-User", "system:admin", "X-Remote-Group", "system:masters"), 401, metav1.StatusReasonUnauthorized, "")
			wantRefused(t, who.name+" /status", who.do(t, ctx, "GET", "/status", nil), 401, metav1.StatusReasonUnauthorized, "")
		}
	})

	t.Run("through the client apiserver, the same refusal", func(t *testing.T) {
		viaClient := attacker{hc: insecure, token: pod.token, base: strings.TrimSuffix(client.URL, "/")}
		wantRefused(t, "delete", viaClient.do(t, ctx, "DELETE", object, nil), 403, metav1.StatusReasonForbidden, forbidden("delete", `"victim" `))
	})

	t.Run("what RBAC grants, and only that", func(t *testing.T) {
		kubectl(t, ctx, client, "create", "role", "victim-reader", "-n", "sec", "--verb=get", "--resource=myresources.example.com")
		kubectl(t, ctx, client, "create", "rolebinding", "victim-reader", "-n", "sec", "--role=victim-reader", "--serviceaccount=sec:intruder")
		kubectl(t, ctx, client, "create", "clusterrole", "metrics-reader", "--verb=get", "--non-resource-url=/metrics")
		kubectl(t, ctx, client, "create", "clusterrolebinding", "metrics-reader", "--clusterrole=metrics-reader", "--serviceaccount=sec:intruder")
		// A refusal is cached for 10 s, as by every aggregated API server.
		crproxytest.Eventually(t, ctx, 25*time.Second, func() string {
			if a := pod.do(t, ctx, "GET", object, nil); a.code != 200 {
				return fmt.Sprintf("get after the grant: %d %s", a.code, a.body)
			}
			if a := pod.do(t, ctx, "GET", "/metrics", nil); a.code != 200 || !strings.Contains(string(a.body), "crproxy_requests_total") {
				return fmt.Sprintf("/metrics after the grant: %d", a.code)
			}
			return ""
		})
		wantRefused(t, "list, not granted", pod.do(t, ctx, "GET", collection, nil), 403, metav1.StatusReasonForbidden, forbidden("list", ""))
		wantRefused(t, "delete, not granted", pod.do(t, ctx, "DELETE", object, nil), 403, metav1.StatusReasonForbidden, forbidden("delete", `"victim" `))
		wantRefused(t, "/status, not granted", pod.do(t, ctx, "GET", "/status", nil), 403, metav1.StatusReasonForbidden, "")
		wantRefused(t, "get in another namespace", pod.do(t, ctx, "GET", "/apis/example.com/v1/namespaces/sec-other/myresources/victim", nil), 403, metav1.StatusReasonForbidden, "")
	})

	// crproxy asks a named get as the list that returns the same object
	// first (one review per namespace, not per object): a list grant opens
	// its own namespace only, and a grant of one name only that name.
	t.Run("a collection grant covers its namespace, a name grant its name", func(t *testing.T) {
		lister := attacker{name: "lister", hc: insecure, token: serviceAccountToken(t, ctx, client, "sec", "lister"), base: p.URL()}
		listerUser := "system:serviceaccount:sec:lister"
		kubectl(t, ctx, client, "create", "role", "lister", "-n", "sec-other", "--verb=list", "--resource=myresources.example.com")
		kubectl(t, ctx, client, "create", "rolebinding", "lister", "-n", "sec-other", "--role=lister", "--serviceaccount=sec:lister")
		kubectl(t, ctx, client, "create", "role", "victim-only", "-n", "sec", "--verb=get", "--resource=myresources.example.com", "--resource-name=victim")
		kubectl(t, ctx, client, "create", "rolebinding", "victim-only", "-n", "sec", "--role=victim-only", "--serviceaccount=sec:lister")
		crproxytest.Eventually(t, ctx, 25*time.Second, func() string {
			if a := lister.do(t, ctx, "GET", object, nil); a.code != 200 {
				return fmt.Sprintf("get of the granted name: %d %s", a.code, a.body)
			}
			if a := lister.do(t, ctx, "GET", "/apis/example.com/v1/namespaces/sec-other/myresources/victim", nil); a.code != 404 {
				return fmt.Sprintf("get in the listable namespace: %d %s, want 404 (no such object)", a.code, a.body)
			}
			return ""
		})
		denied := func(verb, name string) string {
			return fmt.Sprintf(`myresources.example.com %q is forbidden: User %q cannot %s resource "myresources" in API group "example.com" in the namespace "sec"`, name, listerUser, verb)
		}
		wantRefused(t, "get of another name", lister.do(t, ctx, "GET", collection+"/other", nil), 403, metav1.StatusReasonForbidden, denied("get", "other"))
		wantRefused(t, "delete of the granted name", lister.do(t, ctx, "DELETE", object, nil), 403, metav1.StatusReasonForbidden, denied("delete", "victim"))
		wantRefused(t, "list where only a name is granted", lister.do(t, ctx, "GET", collection, nil), 403, metav1.StatusReasonForbidden, "")
		wantRefused(t, "delete in the listable namespace", lister.do(t, ctx, "DELETE", "/apis/example.com/v1/namespaces/sec-other/myresources/victim", nil), 403, metav1.StatusReasonForbidden, "")
	})

	after := kubectl(t, ctx, target, "get", "myresources", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}@{.metadata.resourceVersion} {end}")
	if after != before {
		t.Errorf("the target changed under the attacks:\nbefore %s\nafter  %s", before, after)
	}
}

// A dry run changes nothing anywhere: not the object, and not the target's
// namespaces, which a real create would make. Into a namespace the target
// lacks, it runs as the same dry run elsewhere and answers as the target
// would have.
func TestSecurityDryRun(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))
	kubectl(t, ctx, client, "create", "namespace", "dry-new")
	kubectl(t, ctx, client, "create", "namespace", "dry-known")
	kubectlApply(t, ctx, client, "apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: kept\n  namespace: dry-known\nspec:\n  name: kept\n")
	state := func() string {
		return kubectl(t, ctx, target, "get", "myresources,namespaces", "-A", "-o", "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}@{.metadata.resourceVersion} {end}")
	}
	before := state()
	manifest := func(ns, name string) string {
		return fmt.Sprintf("apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  name: dry\n", name, ns)
	}
	for _, args := range [][]string{
		{"apply", "--dry-run=server", "-f", "-"},
		{"apply", "--server-side", "--dry-run=server", "-f", "-"},
		{"create", "--dry-run=server", "-f", "-"},
	} {
		// As natively: the dry run succeeds in every namespace the client
		// has, and answers the object as it would be, in its namespace.
		for _, ns := range []string{"dry-new", "dry-known"} {
			out, err := kubectlWithStdin(ctx, client, manifest(ns, "new"), append(args, "-o", "jsonpath={.metadata.namespace}/{.metadata.name} {.metadata.labels.vcluster\\.com/owner-vcluster} {.spec.name}")...)
			if want := ns + "/new client dry"; err != nil || out != want {
				t.Errorf("kubectl %s into %s: %v\n%q, want %q", strings.Join(args, " "), ns, err, out, want)
			}
		}
	}
	// kubectl diff of a new object in a namespace the target lacks: a
	// dry-run create, shown as an addition.
	out, err := kubectlWithStdin(ctx, client, manifest("dry-new", "new"), "diff", "-f", "-")
	if err == nil || !strings.Contains(out, "+  name: new") || !strings.Contains(out, "+  namespace: dry-new") {
		t.Errorf("kubectl diff of a new object in a namespace the target lacks: %v\n%s", err, out)
	}
	kubectl(t, ctx, client, "patch", "myresource", "kept", "-n", "dry-known", "--type=merge", "-p", `{"spec":{"name":"changed"}}`, "--dry-run=server")
	kubectl(t, ctx, client, "delete", "myresource", "kept", "-n", "dry-known", "--cascade=foreground", "--dry-run=server")
	kubectl(t, ctx, client, "delete", "myresources", "--all", "-n", "dry-known", "--dry-run=server")
	if after := state(); after != before {
		t.Errorf("a dry run changed the target:\nbefore %s\nafter  %s", before, after)
	}
	if got := kubectl(t, ctx, client, "get", "myresource", "kept", "-n", "dry-known", "-o", "jsonpath={.spec.name}"); got != "kept" {
		t.Errorf("after dry runs, the object reads %q, want kept", got)
	}
}

// kubectlWithStdin runs kubectl as the admin of s with stdin and returns
// its combined output and error.
func kubectlWithStdin(ctx context.Context, s *localcluster.APIServer, stdin string, args ...string) (string, error) {
	cmd := s.KubectlCmd(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The persisted mirror is served only under the selection that filled it:
// restarted from all to owned over the same data folder, with the target
// down, crproxy serves none of the other tenants' objects; restarted from
// owned to all, it lists what the owned mirror lacked.
func TestSecurityMirrorFollowsAccessMode(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	createAtTarget(t, ctx, target, "modes", "client", []string{"mine"}, "")
	createAtTarget(t, ctx, target, "modes", "team-b", []string{"theirs"}, "")
	kubectl(t, ctx, client, "create", "namespace", "modes")
	withAccess := func(mode config.AccessMode) config.Config {
		cfg := crproxytest.Config("client", client, target)
		cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = config.CustomResourceProxy{
			Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: crproxytest.TargetName}, AccessResources: mode,
		}
		return cfg
	}
	listed := func() string {
		out, _ := client.Kubectl(ctx, "get", "myresources", "-n", "modes", "-o", "name")
		return strings.Join(strings.Fields(out), ",")
	}
	p := startProxy(t, client, withAccess(config.AccessAll))
	crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
		if got := listed(); got != "myresource.example.com/mine,myresource.example.com/theirs" {
			return "all mode lists " + got
		}
		return ""
	})

	stopProxy(t, p)
	target.Stop()
	if err := p.Reconfigure(withAccess(config.AccessOwned)); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	// One request each (kubectl would retry the 503 for a minute).
	for _, path := range []string{"/apis/example.com/v1/namespaces/modes/myresources", "/apis/example.com/v1/namespaces/modes/myresources/theirs", "/apis/example.com/v1/myresources?resourceVersion=0"} {
		got := clientRequest(t, ctx, client, "GET", path, "", nil)
		if got.code != http.StatusServiceUnavailable || strings.Contains(string(got.body), "team-b") {
			t.Fatalf("owned mode, target down, nothing mirrored yet: GET %s: %d %s; want 503 and nothing of another tenant's", path, got.code, got.body)
		}
	}
	if err := target.Start(ctx); err != nil {
		t.Fatal(err)
	}
	crproxytest.Eventually(t, ctx, 60*time.Second, func() string {
		if got := listed(); got != "myresource.example.com/mine" {
			return "owned mode lists " + got
		}
		return ""
	})

	stopProxy(t, p)
	if err := p.Reconfigure(withAccess(config.AccessAll)); err != nil {
		t.Fatal(err)
	}
	p.Restart(t)
	crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
		if got := listed(); got != "myresource.example.com/mine,myresource.example.com/theirs" {
			return "all mode again lists " + got
		}
		return ""
	})
}
