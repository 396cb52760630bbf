package mirror

import (
	"maps"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/pkg/config"
)

// TestParseOpenAPIIndex: the hash of each group/version's document, the
// core group's included; a URL without a hash stands for itself; paths
// of no group/version are left out.
func TestParseOpenAPIIndex(t *testing.T) {
	got, err := parseOpenAPIIndex([]byte(`{"paths":{
		"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=CORE"},
		"apis/example.com/v1":{"serverRelativeURL":"/openapi/v3/apis/example.com/v1?hash=ABC"},
		"apis/other.io/v2":{"serverRelativeURL":"/openapi/v3/apis/other.io/v2"},
		"apis":{"serverRelativeURL":"/openapi/v3/apis?hash=X"},
		".well-known/openid-configuration":{"serverRelativeURL":"/openapi/v3/.well-known/openid-configuration?hash=Y"},
		"version":{"serverRelativeURL":"/openapi/v3/version?hash=Z"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[schema.GroupVersion]string{
		{Version: "v1"}:                       "CORE",
		{Group: "example.com", Version: "v1"}: "ABC",
		{Group: "other.io", Version: "v2"}:    "/openapi/v3/apis/other.io/v2",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("hashes %v, want %v", got, want)
	}
	if _, err := parseOpenAPIIndex([]byte("not json")); err == nil {
		t.Fatal("no error for an index that is not JSON")
	}
}

// TestOpenAPIHashes: only the followed group/versions' hashes are kept and
// only their changes call onChange (a group/version leaving the index is
// one); the index is read at every poll while following a change, every
// openAPIPoll otherwise.
func TestOpenAPIHashes(t *testing.T) {
	proxied := schema.GroupVersion{Group: "example.com", Version: "v1"}
	other := schema.GroupVersion{Group: "other.io", Version: "v1"}
	var o openAPIHashes
	now := time.Now()
	if o.due(now) {
		t.Fatal("due without a group/version to follow")
	}
	o.add(proxied)
	changes := 0
	o.onChange = func() { changes++ }
	for _, c := range []struct {
		what  string
		index map[schema.GroupVersion]string
		hash  string
		calls int
	}{
		{"first read", map[schema.GroupVersion]string{proxied: "A", other: "X"}, "A", 1},
		{"the same", map[schema.GroupVersion]string{proxied: "A", other: "X"}, "A", 1},
		{"another group/version changed", map[schema.GroupVersion]string{proxied: "A", other: "Y"}, "A", 1},
		{"changed", map[schema.GroupVersion]string{proxied: "B", other: "Y"}, "B", 2},
		{"gone", map[schema.GroupVersion]string{other: "Y"}, "", 3},
	} {
		o.record(c.index, now)
		if got := o.hash(proxied); got != c.hash || changes != c.calls || o.hash(other) != "" {
			t.Fatalf("%s: hash %q (other %q), %d changes; want %q, %d", c.what, got, o.hash(other), changes, c.hash, c.calls)
		}
	}
	if o.due(now.Add(openAPIPoll/2)) || !o.due(now.Add(openAPIPoll)) {
		t.Fatal("not read every openAPIPoll while nothing changed")
	}
	o.follow(now)
	if !o.due(now.Add(time.Second)) {
		t.Fatal("not read at every poll while following a change")
	}
	o.record(map[schema.GroupVersion]string{other: "Y"}, now.Add(openAPIFollow))
	if o.due(now.Add(openAPIFollow + time.Second)) {
		t.Fatal("still read at every poll after openAPIFollow")
	}
}

// TestDiscoveryFingerprintCoversOpenAPI: a new OpenAPI hash at the target
// changes the group/version's fingerprint (the client's aggregator reads
// OpenAPI again) and closes DiscoveryChanged (crproxy's copies go).
func TestDiscoveryFingerprintCoversOpenAPI(t *testing.T) {
	gv := schema.GroupVersion{Group: "example.com", Version: "v1"}
	cfg := &config.Config{
		Client:  config.Client{Name: "client", Project: "default"},
		Targets: []config.Target{{Name: "target", Project: "default"}},
		Experimental: config.Experimental{Proxy: config.Proxy{CustomResources: map[string]config.CustomResourceProxy{
			"*.example.com/v1": {Enabled: true, TargetVirtualCluster: config.VirtualClusterRef{Name: "target"}},
		}}},
	}
	m, err := New(Options{Config: cfg, TargetConfigs: map[string]*rest.Config{"default/target": {Host: "https://target:6443"}}})
	if err != nil {
		t.Fatal(err)
	}
	hashes := &m.Targets()["default/target"].discoveryPoller.openAPI
	before, changed := m.DiscoveryFingerprint(gv), m.DiscoveryChanged()
	hashes.record(map[schema.GroupVersion]string{gv: "A"}, time.Now())
	after := m.DiscoveryFingerprint(gv)
	select {
	case <-changed:
	default:
		t.Fatal("a new OpenAPI hash did not close DiscoveryChanged")
	}
	if before == after {
		t.Fatal("a new OpenAPI hash left the fingerprint as it was")
	}
}
