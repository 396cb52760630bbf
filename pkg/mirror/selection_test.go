package mirror

import (
	"path/filepath"
	"testing"

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
