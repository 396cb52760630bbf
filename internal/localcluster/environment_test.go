package localcluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crproxy/crproxy/internal/localcluster"
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

// Every apiserver runs with the controllers of a real cluster: a deleted
// namespace is emptied and goes away, a dependent goes with its owner, a
// quota counts, and a namespace gets its default service account.
func TestAPIServerRunsControllerManager(t *testing.T) {
	ctx := context.Background()
	s := clustertest.NewAPIServer(t, "controllers")
	if s.ControllerManager == nil || !s.ControllerManager.Running() {
		t.Fatal("no controller manager runs beside the apiserver")
	}
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := s.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	kubectl("create", "namespace", "work")
	eventually("default service account", func() bool {
		_, err := s.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "work")
		return err == nil
	})
	kubectl("create", "quota", "cms", "-n", "work", "--hard=count/configmaps=10")
	kubectl("create", "configmap", "owner", "-n", "work")
	uid := kubectl("get", "configmap", "owner", "-n", "work", "-o", "jsonpath={.metadata.uid}")
	dependent := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dependent","namespace":"work",` +
		`"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"` + uid + `"}]}}`
	cmd := s.KubectlCmd(ctx, "create", "-f", "-")
	cmd.Stdin = strings.NewReader(dependent)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create dependent: %v: %s", err, out)
	}
	// kube-root-ca.crt, owner and dependent.
	eventually("quota counts the configmaps", func() bool {
		out, _ := s.Kubectl(ctx, "get", "quota", "cms", "-n", "work", "-o", "jsonpath={.status.used.count/configmaps}")
		return out == "3"
	})
	kubectl("delete", "configmap", "owner", "-n", "work")
	eventually("garbage collector deletes the dependent", func() bool {
		out, err := s.Kubectl(ctx, "get", "configmap", "dependent", "-n", "work")
		return err != nil && strings.Contains(out, "NotFound")
	})
	kubectl("delete", "namespace", "work", "--wait=false")
	eventually("namespace deletion finishes", func() bool {
		out, err := s.Kubectl(ctx, "get", "namespace", "work")
		return err != nil && strings.Contains(out, "NotFound")
	})
}

// A bare apiserver runs no controller manager: a test that must not have
// controllers act says so.
func TestBareAPIServer(t *testing.T) {
	s := clustertest.NewAPIServer(t, "bare", localcluster.APIServerOptions{Bare: true})
	if s.ControllerManager != nil {
		t.Fatal("a bare apiserver has a controller manager")
	}
}
