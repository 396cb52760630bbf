package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// watchedState follows one watch through the client cluster and keeps the
// state it implies: name -> spec.name.
type watchedState struct {
	mu      sync.Mutex
	objects map[string]string
	types   []watch.EventType
	closed  bool
}

func (s *watchedState) follow(w watch.Interface) {
	for e := range w.ResultChan() {
		u, ok := e.Object.(*unstructured.Unstructured)
		s.mu.Lock()
		s.types = append(s.types, e.Type)
		if ok {
			title, _, _ := unstructured.NestedString(u.Object, "spec", "name")
			switch e.Type {
			case watch.Added, watch.Modified:
				s.objects[u.GetName()] = title
			case watch.Deleted:
				delete(s.objects, u.GetName())
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *watchedState) snapshot() (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.objects {
		out[k] = v
	}
	return out, s.closed
}

// A target cut off from crproxy (a network partition, then a restart of the
// target, and changes made there meanwhile): reads go on with a Warning,
// writes fail fast with 503 and Retry-After, an open watch stays open and
// ends with the target's state, and writes work again after recovery.
func TestTargetOutage(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	cut, err := localcluster.NewFaultProxy(strings.TrimPrefix(target.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cut.Close)
	viaCut := target.RESTConfig()
	viaCut.Host = "https://" + cut.Addr()
	kubeconfig := filepath.Join(t.TempDir(), "target-via-cut.kubeconfig")
	if err := localcluster.WriteKubeconfig(kubeconfig, "target", viaCut); err != nil {
		t.Fatal(err)
	}
	cfg := crproxytest.Config("client", client, target)
	cfg.Targets[0].Kubeconfig = kubeconfig
	startProxy(t, client, cfg)

	for _, name := range []string{"keep", "change", "remove"} {
		kubectlApplyOut(t, ctx, client, strings.Replace(strings.Replace(testResource, "test-resource", name, 1), "Test Resource", name, 1))
	}
	resources := dynamicClient(t, client).Resource(crproxytest.MyResources).Namespace("default")
	list, err := resources.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := resources.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	watched := &watchedState{objects: map[string]string{}}
	for _, item := range list.Items {
		title, _, _ := unstructured.NestedString(item.Object, "spec", "name")
		watched.objects[item.GetName()] = title
	}
	go watched.follow(w)

	cut.Partition()

	t.Run("reads are served from the mirror with a Warning", func(t *testing.T) {
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			out, err := client.Kubectl(ctx, "get", "myresources", "-o", "name")
			if err != nil {
				return err.Error()
			}
			if !strings.Contains(out, "Warning: target default/target unreachable since") || !strings.Contains(out, "serving cached data at resourceVersion") {
				return "no unreachable warning in:\n" + out
			}
			for _, name := range []string{"keep", "change", "remove"} {
				if !strings.Contains(out, "myresource.example.com/"+name) {
					return "missing " + name + " in:\n" + out
				}
			}
			return ""
		})
		out := kubectl(t, ctx, client, "get", "myresource", "keep", "-o", "jsonpath={.spec.name}")
		if !strings.Contains(out, "keep") {
			t.Fatalf("get while the target is cut off: %q", out)
		}
	})

	t.Run("writes fail fast with 503 and Retry-After", func(t *testing.T) {
		start := time.Now()
		a := clientRequest(t, ctx, client, "POST", "/apis/example.com/v1/namespaces/default/myresources", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"during-outage"}}`))
		took := time.Since(start)
		s := a.status(t)
		if a.code != http.StatusServiceUnavailable || !strings.Contains(s.Message, "target default/target unreachable since") || a.header.Get("Retry-After") == "" {
			t.Fatalf("write while cut off: %d %q Retry-After=%q", a.code, s.Message, a.header.Get("Retry-After"))
		}
		if took > 3*time.Second {
			t.Fatalf("the write took %s to fail", took)
		}
	})

	// The target restarts while cut off, and is changed meanwhile: its new
	// watch cache starts after the mirror's resourceVersion, so crproxy
	// must relist and emit the difference.
	target.Stop()
	if err := target.Start(ctx); err != nil {
		t.Fatal(err)
	}
	kubectl(t, ctx, target, "delete", "myresource", "remove")
	kubectl(t, ctx, target, "patch", "myresource", "change", "--type=merge", `-p={"spec":{"name":"changed at the target"}}`)
	createAtTarget(t, ctx, target, "default", "client", []string{"added"}, "")
	cut.Heal()

	t.Run("the open watch ends with the target's state", func(t *testing.T) {
		want := map[string]string{"keep": "keep", "change": "changed at the target", "added": "added"}
		crproxytest.Eventually(t, ctx, 30*time.Second, func() string {
			got, closed := watched.snapshot()
			if closed {
				return "the watch through the client cluster was closed"
			}
			if len(got) != len(want) {
				return "watched state " + strings.Join(mapLines(got), ", ")
			}
			for k, v := range want {
				if got[k] != v {
					return "watched state " + strings.Join(mapLines(got), ", ")
				}
			}
			return ""
		})
	})

	t.Run("reads are current and writes work again", func(t *testing.T) {
		crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
			out, err := crproxytest.ApplyYAML(ctx, client, crproxytest.Manifest("myresource-after-outage.yaml"))
			if err != nil {
				return err.Error()
			}
			if strings.Contains(out, "Warning") {
				return "still warned: " + out
			}
			return ""
		})
		wantNames(t, names(t, ctx, client), "added", "after-outage", "change", "keep")
		wantNames(t, names(t, ctx, target), "added", "after-outage", "change", "keep")
	})
}

func mapLines(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}
