package localcluster_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// An apiserver stopped and started again keeps its port and its data; while
// it is down, clients get connection refused.
func TestAPIServerRestartsInPlace(t *testing.T) {
	ctx := context.Background()
	s := clustertest.NewAPIServer(t, "restart")
	if _, err := s.Kubectl(ctx, "create", "configmap", "kept", "--from-literal=k=v"); err != nil {
		t.Fatal(err)
	}
	url := s.URL

	for _, stop := range []struct {
		name string
		do   func()
	}{{"graceful stop", s.Stop}, {"kill", s.Kill}} {
		stop.do()
		if s.Running() {
			t.Fatalf("%s: still running", stop.name)
		}
		out, err := s.Kubectl(ctx, "get", "configmap", "kept", "--request-timeout=5s")
		if err == nil || !strings.Contains(out, "refused") {
			t.Fatalf("%s: while down, kubectl said %q (err %v); want connection refused", stop.name, out, err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatalf("%s: restart: %v", stop.name, err)
		}
		if s.URL != url {
			t.Fatalf("%s: URL changed from %s to %s", stop.name, url, s.URL)
		}
		got, err := s.Kubectl(ctx, "get", "configmap", "kept", "-o", "jsonpath={.data.k}")
		if err != nil || got != "v" {
			t.Fatalf("%s: after restart configmap data %q (err %v); want v", stop.name, got, err)
		}
	}
}

// Two apiservers on one etcd keep their data apart (own etcd prefixes).
func TestAPIServersKeepDataApart(t *testing.T) {
	ctx := context.Background()
	a := clustertest.NewAPIServer(t, "a")
	b := clustertest.NewAPIServer(t, "b")
	if _, err := a.Kubectl(ctx, "create", "namespace", "only-in-a"); err != nil {
		t.Fatal(err)
	}
	out, err := b.Kubectl(ctx, "get", "namespace", "only-in-a")
	if err == nil || !strings.Contains(out, "NotFound") && !strings.Contains(out, "not found") {
		t.Fatalf("b sees a's namespace: %q (err %v)", out, err)
	}
}
