package platform

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/crproxy/crproxy/pkg/config"
)

// TestNewForConfig builds the checker of a configuration: the kubeconfig of
// its platform section, its client, and the targets its group/versions route
// to, cross-project ones included.
func TestNewForConfig(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authorization.k8s.io/v1/subjectaccessreviews" {
			http.NotFound(w, r)
			return
		}
		// client-go sends protobuf; the answer may be JSON.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var review authorizationv1.SubjectAccessReview
		if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, &review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		a := review.Spec.ResourceAttributes
		review.Status.Allowed = review.Spec.User == identity && a.Namespace == "p-other-project" && a.Name == "shared"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "platform.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: platform, cluster: {server: "`+srv.URL+`"}}]
users: [{name: crproxy, user: {token: secret}}]
contexts: [{name: platform, context: {cluster: platform, user: crproxy}}]
current-context: platform
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
client: {name: client}
targets:
  - {name: target, kubeconfig: t}
  - {name: shared, project: other-project, kubeconfig: s}
  - {name: unused, kubeconfig: u}
experimental:
  proxy:
    customResources:
      myresources.example.com/v1: {enabled: true, targetVirtualCluster: {name: target}}
      otherresources.test.io/v2: {enabled: true, targetVirtualCluster: {name: shared, project: other-project}}
      thirdresources.test.io/v3: {enabled: true, targetVirtualCluster: {name: shared, project: other-project}}
platform:
  kubeconfig: ` + kubeconfig + `
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewForConfig(cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Targets(), []string{"default/target", "other-project/shared"}; !slices.Equal(got, want) {
		t.Errorf("Targets() = %v, want %v (the routed ones)", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := c.WaitFirst(wait); err != nil {
		t.Fatal(err)
	}
	if d := c.Decision("other-project/shared"); d.State != Allowed {
		t.Errorf("shared: %+v, want Allowed", d)
	}
	if d := c.Decision("default/target"); d.State != Denied || d.Identity != identity {
		t.Errorf("target: %+v, want Denied for %s", d, identity)
	}
	mu.Lock()
	if len(agents) == 0 || !strings.HasPrefix(agents[0], "crproxy/") {
		t.Errorf("user agents %v", agents)
	}
	mu.Unlock()

	srv.Close()
	c.Recheck("default/target")
	eventually(t, 5*time.Second, inState(c, "default/target", Unknown))
	if d := c.Decision("default/target"); strings.Contains(d.Reason, "127.0.0.1") || !strings.Contains(d.LastError, "127.0.0.1") {
		t.Errorf("unreachable: reason %q, last error %q: want the address in the error only", d.Reason, d.LastError)
	}
}

func TestNewForConfigWithoutPlatform(t *testing.T) {
	c, err := NewForConfig(&config.Config{Client: client}, nil, Options{})
	if c != nil || err != nil {
		t.Errorf("NewForConfig without a platform section = %v, %v; want nil, nil", c, err)
	}
}

func TestNewForConfigMissingKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.kubeconfig")
	_, err := NewForConfig(&config.Config{Client: client, Platform: &config.Platform{Kubeconfig: path}}, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "platform: loading kubeconfig "+path) {
		t.Errorf("error %v, want it to name the kubeconfig", err)
	}
}
