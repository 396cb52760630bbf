package status

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/server"
)

var testNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

var testReport = server.StatusReport{Targets: []server.TargetStatus{{
	Status:       reconnect.Status{Target: "default/target", State: reconnect.Unreachable, Since: testNow.Add(-90 * time.Second), LastError: "connection refused", Reconnects: 1},
	Undiscovered: []string{"other.com/v2"},
	Resources:    []server.ResourceStatus{{Group: "example.com", Version: "v1", Resource: "myresources", Objects: 3, ResourceVersion: "812", Synced: true, Watchers: 2}},
}}}

func TestPrintTables(t *testing.T) {
	var b bytes.Buffer
	if err := printTables(&b, testReport, testNow); err != nil {
		t.Fatal(err)
	}
	want := `TARGET           STATE         SINCE   LAST-EVENT   RECONNECTS   LAST-ERROR
default/target   Unreachable   90s     <never>      1            connection refused

RESOURCE                            TARGET           OBJECTS   RESOURCEVERSION   SYNCED   WATCHERS
myresources.v1.example.com          default/target   3         812               true     2
other.com/v2 (not discovered yet)   default/target   -         -                 false    -
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// fakeCrproxy serves /status over TLS and accepts only the bearer token
// "client-token"; it returns crproxy's options for it (a configuration whose
// client kubeconfig holds that token, and a data folder with the server's
// certificate where crproxy writes its own).
func fakeCrproxy(t *testing.T) *Options {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer client-token" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"Unauthorized","code":401}`))
			return
		}
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(testReport)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	certs := filepath.Join(dir, "data", "certs")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certs, "apiserver.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://client.invalid:6443"}}]
users: [{name: u, user: {token: client-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(filepath.Join(dir, "client.kubeconfig"), []byte(kubeconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	config := `client: {project: default, name: client, kubeconfig: client.kubeconfig}
targets: [{name: target, kubeconfig: target.kubeconfig}]
experimental:
  proxy:
    customResources:
      myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}
`
	if err := os.WriteFile(filepath.Join(dir, "crproxy.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Options{ConfigFile: filepath.Join(dir, "crproxy.yaml"), Server: srv.URL, DataDir: filepath.Join(dir, "data"), Output: "json", Timeout: 5 * time.Second}
}

func TestRunAuthenticatesAndVerifies(t *testing.T) {
	o := fakeCrproxy(t)
	var b bytes.Buffer
	if err := Run(context.Background(), o, &b); err != nil {
		t.Fatal(err)
	}
	var got server.StatusReport
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got.Targets) != 1 || got.Targets[0].Resources[0].Objects != 3 {
		t.Fatalf("json output %v:\n%s", err, b.String())
	}

	// Another data folder: crproxy's certificate is not trusted.
	bad := *o
	bad.DataDir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad.DataDir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad.DataDir, "certs", "apiserver.crt"), otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), &bad, &b)
	if err == nil || !strings.Contains(err.Error(), "--insecure-skip-tls-verify") {
		t.Errorf("untrusted certificate: %v", err)
	}
	bad.InsecureSkipTLSVerify = true
	if err := Run(context.Background(), &bad, &b); err != nil {
		t.Errorf("with --insecure-skip-tls-verify: %v", err)
	}
}

func TestRunRefused(t *testing.T) {
	o := fakeCrproxy(t)
	kubeconfig := filepath.Join(filepath.Dir(o.ConfigFile), "client.kubeconfig")
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, bytes.Replace(data, []byte("client-token"), []byte("wrong"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), o, &bytes.Buffer{})
	if err == nil || err.Error() != "crproxy answered 401 Unauthorized: Unauthorized" {
		t.Errorf("refused: %v", err)
	}
}
