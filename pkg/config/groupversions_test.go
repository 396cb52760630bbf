package config

import (
	"reflect"
	"testing"
)

// TestGroupVersionsUnvalidated checks that GroupVersions stays sane on a
// configuration that did not pass Validate.
func TestGroupVersionsUnvalidated(t *testing.T) {
	c := &Config{
		Client: Client{Name: "client"},
		Experimental: Experimental{Proxy: Proxy{CustomResources: map[string]CustomResourceProxy{
			"a.example.com/v1": {Enabled: true, TargetVirtualCluster: VirtualClusterRef{Name: "missing"}},
			"b.example.com/v1": {Enabled: true, TargetVirtualCluster: VirtualClusterRef{Name: "other"}, AccessResources: AccessAll},
			"*.example.com/v1": {Enabled: false},
			"bad/v1":           {Enabled: true},
			"c.example.com/v2": {Enabled: false},
		}}},
	}
	want := []GroupVersionProxy{{
		GroupVersion: exampleV1,
		Target:       Target{Name: "missing", Project: "default"},
		Access:       AccessOwned,
		Resources:    []string{"a", "b"},
	}}
	if got := c.GroupVersions(); !reflect.DeepEqual(got, want) {
		t.Errorf("GroupVersions() =\n%+v\nwant\n%+v", got, want)
	}
}
