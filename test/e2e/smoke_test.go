package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// TestSmokeTargetStoresCustomResource proves the harness runs a real
// apiserver: the documentation's CRD is installed in the target only, and a
// MyResource created there with kubectl reads back with kubectl.
func TestSmokeTargetStoresCustomResource(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.SharedAPIServer(t, "client")

	installCRD(t, ctx, target, "myresource-crd.yaml")
	kubectlApply(t, ctx, target, `apiVersion: example.com/v1
kind: MyResource
metadata:
  name: smoke-resource
  namespace: default
spec:
  name: "Test Resource"
  priority: "high"
`)
	got := kubectl(t, ctx, target, "get", "myresource", "smoke-resource", "-n", "default", "-o", "jsonpath={.spec.name}/{.spec.priority}")
	if got != "Test Resource/high" {
		t.Fatalf("target returned spec %q, want %q", got, "Test Resource/high")
	}

	// The CRD lives in the target only: the client does not know the type.
	out, err := client.Kubectl(ctx, "get", "myresources")
	if err == nil || !strings.Contains(out, `doesn't have a resource type "myresources"`) {
		t.Fatalf("client should not serve myresources yet; kubectl said %q (err %v)", out, err)
	}

	// The server reports the version stamped at link time, which kubectl parses.
	version := kubectl(t, ctx, target, "version", "-o", "json")
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
	}
	if err := json.Unmarshal([]byte(version), &v); err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, version)
	}
	if v.ServerVersion.GitVersion != "v1.36.3" || v.ClientVersion.GitVersion != "v1.36.3" {
		t.Fatalf("versions: server %q, client %q; want v1.36.3 for both", v.ServerVersion.GitVersion, v.ClientVersion.GitVersion)
	}
}

// TestSmokeAggregationReachesLocalhost proves the aggregation path crproxy
// relies on: an APIService in the client cluster, backed by an ExternalName
// Service "localhost", reaches an HTTPS server on this machine, which sees
// the aggregator's front-proxy certificate and the caller's identity.
func TestSmokeAggregationReachesLocalhost(t *testing.T) {
	ctx := testContext(t)
	client := clustertest.SharedAPIServer(t, "client")

	backend := startDiscoveryBackend(t, client, "smoke.crproxy.dev", "v1")
	kubectl(t, ctx, client, "create", "namespace", "crproxy-smoke")
	kubectlApply(t, ctx, client, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: smoke-backend
  namespace: crproxy-smoke
spec:
  type: ExternalName
  externalName: localhost
  ports:
  - port: %[1]d
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1.smoke.crproxy.dev
spec:
  group: smoke.crproxy.dev
  version: v1
  groupPriorityMinimum: 1000
  versionPriority: 15
  caBundle: %[2]s
  service:
    namespace: crproxy-smoke
    name: smoke-backend
    port: %[1]d
`, backend.port, base64.StdEncoding.EncodeToString(client.CA.CertPEM)))
	t.Cleanup(func() {
		_, _ = client.Kubectl(context.Background(), "delete", "apiservice", "v1.smoke.crproxy.dev", "--wait=false")
	})
	kubectl(t, ctx, client, "wait", "--for=condition=Available", "apiservice/v1.smoke.crproxy.dev", "--timeout=60s")

	raw := kubectl(t, ctx, client, "get", "--raw", "/apis/smoke.crproxy.dev/v1")
	var list metav1.APIResourceList
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatalf("discovery through the aggregator: %v\n%s", err, raw)
	}
	if list.GroupVersion != "smoke.crproxy.dev/v1" || len(list.APIResources) != 1 || list.APIResources[0].Name != "widgets" {
		t.Fatalf("discovery through the aggregator returned %+v", list)
	}
	if users := backend.usersSeen(); !contains(users, localcluster.AdminUser) {
		t.Fatalf("backend saw users %q; want the caller %q forwarded by the aggregator", users, localcluster.AdminUser)
	}
}

// discoveryBackend is an HTTPS server that, like an aggregated apiserver,
// only accepts the aggregator's front-proxy certificate and serves one
// APIResourceList.
type discoveryBackend struct {
	port  int
	mu    sync.Mutex
	users []string
}

func startDiscoveryBackend(t *testing.T, client *localcluster.APIServer, group, version string) *discoveryBackend {
	t.Helper()
	// The aggregator checks the certificate for <service>.<namespace>.svc,
	// whatever address the Service resolves to.
	serving, err := client.CA.IssueServing("smoke-backend", "smoke-backend.crproxy-smoke.svc")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	frontProxyCAs := x509.NewCertPool()
	frontProxyCAs.AddCert(client.FrontProxyCA.Cert)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &discoveryBackend{port: listener.Addr().(*net.TCPAddr).Port}
	path := "/apis/" + group + "/" + version
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != localcluster.FrontProxyClientName {
			http.Error(w, "not the aggregator", http.StatusUnauthorized)
			return
		}
		b.mu.Lock()
		b.users = append(b.users, r.Header.Get("X-Remote-User"))
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: group + "/" + version,
			APIResources: []metav1.APIResource{{Name: "widgets", Kind: "Widget", Namespaced: true, Verbs: []string{"get", "list"}}},
		})
	})
	server := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    frontProxyCAs,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = server.ServeTLS(listener, "", "") }()
	t.Cleanup(func() { _ = server.Close() })
	return b
}

func (b *discoveryBackend) usersSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.users...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
