package mirror

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

// A persisted mirror is served only to the selection that filled it: a
// change of access mode, client identity or target address forgets it,
// and so does a resource no longer proxied.
func TestMirrorForgetsOtherSelections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	// cfg is a configuration of client name in access mode; the target's
	// Kubeconfig field holds its address (TargetConfigs below).
	cfg := func(name string, access config.AccessMode, server string) *config.Config {
		return &config.Config{
			Client:  config.Client{Name: name, Project: "default"},
			Targets: []config.Target{{Name: "target", Project: "default", Kubeconfig: server}},
			Experimental: config.Experimental{Proxy: config.Proxy{CustomResources: map[string]config.CustomResourceProxy{
				"things.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target"}, AccessResources: access},
			}}},
		}
	}
	// open runs New over the store at path, with the cache of things
	// filled by the previous run, and reports whether that cache survived.
	var previous *store.Key
	open := func(c *config.Config) bool {
		t.Helper()
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		m, err := New(Options{Config: c, Store: st, TargetConfigs: map[string]*rest.Config{"default/target": {Host: c.Targets[0].Kubeconfig}}})
		if err != nil {
			t.Fatal(err)
		}
		kept := false
		for _, k := range st.Caches() {
			kept = kept || (previous != nil && k == *previous)
		}
		gv := m.GroupVersions()[0]
		k := store.Key{Target: gv.Target.ID, Group: "example.com", Version: "v1", Resource: "things", Selection: gv.selection}
		if err := st.Cache(k).Replace(nil, 5); err != nil {
			t.Fatal(err)
		}
		previous = &k
		return kept
	}
	a := cfg("a", config.AccessOwned, "https://target:6443")
	open(a)
	if !open(a) {
		t.Error("the same configuration lost its mirror")
	}
	for _, c := range []struct {
		what string
		cfg  *config.Config
	}{
		{"owned to all", cfg("a", config.AccessAll, "https://target:6443")},
		{"all to owned", cfg("a", config.AccessOwned, "https://target:6443")},
		{"another client", cfg("b", config.AccessOwned, "https://target:6443")},
		{"another target address", cfg("b", config.AccessOwned, "https://elsewhere:6443")},
	} {
		if open(c.cfg) {
			t.Errorf("%s: the mirror of the previous configuration is still served", c.what)
		}
	}
	none := cfg("b", config.AccessOwned, "https://elsewhere:6443")
	none.Experimental.Proxy.CustomResources = map[string]config.CustomResourceProxy{
		"others.example.com/v2": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target"}},
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Config: none, Store: st, TargetConfigs: map[string]*rest.Config{"default/target": {Host: none.Targets[0].Kubeconfig}}}); err != nil {
		t.Fatal(err)
	}
	if keys := st.Caches(); len(keys) != 0 {
		t.Errorf("caches of resources no longer proxied: %v", keys)
	}
	st.Close()
}

// TestUnserved: a group/version is unserved only once a discovery
// document of it was applied, read from the target or persisted, and
// listed none of its resources; reading the target's first document
// tells the registration (DiscoveryChanged) even when it changes no
// resource.
func TestUnserved(t *testing.T) {
	gv := schema.GroupVersion{Group: "example.com", Version: "v1"}
	var doc atomic.Value // the target's /apis/example.com/v1; "" answers 404
	doc.Store("")
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := doc.Load().(string)
		if r.URL.Path == "/readyz" {
			w.Write([]byte("ok"))
			return
		}
		if r.URL.Path != "/apis/example.com/v1" || body == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	defer target.Close()
	things := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: []metav1.APIResource{{Name: "things", SingularName: "thing", Kind: "Thing", Namespaced: true, Verbs: metav1.Verbs{"get", "list"}}},
	}
	data, _ := json.Marshal(things)

	dir := t.TempDir()
	cfg := &config.Config{
		Client:  config.Client{Name: "client", Project: "default"},
		Targets: []config.Target{{Name: "target", Project: "default"}},
		Experimental: config.Experimental{Proxy: config.Proxy{CustomResources: map[string]config.CustomResourceProxy{
			"*.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target"}},
		}}},
	}
	// open runs New with the discovery persisted in dir, as a start of
	// crproxy does.
	open := func() *Mirror {
		t.Helper()
		st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m, err := New(Options{Config: cfg, Store: st, DataDir: dir, TargetConfigs: map[string]*rest.Config{"default/target": {Host: target.URL}}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	refresh := func(m *Mirror) {
		t.Helper()
		if err := m.GroupVersions()[0].refresh(context.Background(), zap.NewNop()); err != nil {
			t.Fatal(err)
		}
	}
	woken := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}

	m := open()
	if m.Unserved(gv) {
		t.Fatal("unserved before any discovery was read")
	}
	if m.Unserved(schema.GroupVersion{Group: "other.example.com", Version: "v1"}) {
		t.Fatal("a group/version not proxied is unserved")
	}
	changed := m.DiscoveryChanged()
	refresh(m) // 404: the target serves nothing of it
	if !m.Unserved(gv) || !woken(changed) {
		t.Fatalf("after an empty document: unserved %v, DiscoveryChanged closed %v", m.Unserved(gv), woken(changed))
	}
	changed = m.DiscoveryChanged()
	refresh(m)
	if woken(changed) {
		t.Fatal("the same empty document again closed DiscoveryChanged")
	}
	if m := open(); !m.Unserved(gv) {
		t.Fatal("an empty document persisted: not unserved at the next start")
	}

	doc.Store(string(data))
	refresh(m)
	if m.Unserved(gv) {
		t.Fatal("unserved although the target serves things")
	}
	if m := open(); m.Unserved(gv) {
		t.Fatal("a document with things persisted: unserved at the next start")
	}
	// An ownerReference to a Thing names the same object on both sides
	// while the target serves things, and no longer once it does not.
	passthrough := func() bool { return m.GroupVersions()[0].Target.Passthrough("example.com/v1", "Thing") }
	if !passthrough() {
		t.Fatal("things served, but an ownerReference to a Thing does not pass through")
	}
	doc.Store("")
	refresh(m)
	if !m.Unserved(gv) || passthrough() {
		t.Fatalf("things dropped: unserved %v, an ownerReference to a Thing passes through %v", m.Unserved(gv), passthrough())
	}
}
