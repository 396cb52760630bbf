package config

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersionProxy is the resolved, validated view of one proxied
// group/version: what the server registers with the aggregation layer and
// what the mirror watches.
type GroupVersionProxy struct {
	// GroupVersion is the proxied group/version.
	GroupVersion schema.GroupVersion
	// Target is the entry of Config.Targets it routes to, Project filled in.
	Target Target
	// Access is the access mode, defaulted.
	Access AccessMode
	// Resources are the plural resource names, sorted; empty when Wildcard.
	Resources []string
	// Wildcard is true when every resource of the group/version is proxied.
	Wildcard bool
}

// GroupVersions returns the enabled custom resources grouped by group/version,
// sorted by group then version. Call it after Validate reported no problem:
// it skips malformed keys, and where keys of one group/version disagree the
// first key in sorted order wins.
func (c *Config) GroupVersions() []GroupVersionProxy {
	crs := c.Experimental.Proxy.CustomResources
	byGV := map[schema.GroupVersion]*GroupVersionProxy{}
	for _, key := range sortedKeys(crs) {
		cr := crs[key]
		rk, problem := parseKey(key)
		if !cr.Enabled || problem != "" {
			continue
		}
		gv := byGV[rk.GroupVersion()]
		if gv == nil {
			target, ok := c.target(cr.TargetVirtualCluster)
			if !ok {
				// Unvalidated configuration: keep the reference itself.
				ref := cr.TargetVirtualCluster
				target = Target{Name: ref.Name, Project: ref.project(c.Client.project())}
			}
			gv = &GroupVersionProxy{GroupVersion: rk.GroupVersion(), Target: target, Access: cr.access()}
			byGV[rk.GroupVersion()] = gv
		}
		if rk.Wildcard() {
			gv.Wildcard, gv.Resources = true, nil
		} else if !gv.Wildcard {
			gv.Resources = append(gv.Resources, rk.Resource) // keys come sorted, so Resources are too
		}
	}
	out := make([]GroupVersionProxy, 0, len(byGV))
	for _, gv := range slices.SortedFunc(maps.Keys(byGV), compareGV) {
		out = append(out, *byGV[gv])
	}
	return out
}
