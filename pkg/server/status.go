package server

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// StatusReport is what /status answers, and what /readyz and the mirror's
// metrics are computed from: one consistent walk over the targets and the
// caches, taken when asked.
type StatusReport struct {
	// Targets are sorted by ID.
	Targets []TargetStatus `json:"targets"`
	// ClientCAsPending is true until the client cluster's CA bundles are
	// loaded: certificates are not authenticated yet.
	ClientCAsPending bool `json:"clientCAsPending,omitempty"`
	// Platform is the platform's permission to use each target, when the
	// configuration has a platform section.
	Platform []platform.Decision `json:"platform,omitempty"`
}

// TargetStatus is one target's connection and the resources mirrored from
// it.
type TargetStatus struct {
	reconnect.Status
	// Undiscovered lists the group/versions of this target whose resources
	// were never discovered (neither from the target nor from disk): there
	// is nothing to serve for them yet.
	Undiscovered []string `json:"undiscovered,omitempty"`
	// Unserved lists the group/versions of this target whose resources
	// the target serves none of now (their CRDs were deleted, or not
	// created yet): nothing to serve, as at a kube-apiserver.
	Unserved []string `json:"unserved,omitempty"`
	// Resources are in group/version, then resource order.
	Resources []ResourceStatus `json:"resources"`
}

// ResourceStatus is the state of one resource's mirror.
type ResourceStatus struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
	// Objects is how many objects the mirror holds.
	Objects int `json:"objects"`
	// ResourceVersion is the target's resourceVersion the mirror is at
	// ("0" before its first sync).
	ResourceVersion string `json:"resourceVersion"`
	// Synced is true when the mirror holds a complete state: listed from
	// the target, or loaded from disk.
	Synced bool `json:"synced"`
	// Watchers counts the watches open on the mirror.
	Watchers int `json:"watchers"`
}

// Name is the resource as kubectl names it fully: resource.version.group.
func (r ResourceStatus) Name() string {
	return r.Resource + "." + r.Version + "." + r.Group
}

// buildStatus walks the mirror. It takes no lock for long: each target's
// and cache's state is read with its own accessor.
func buildStatus(m *mirror.Mirror) StatusReport {
	targets := m.Targets()
	ids := make([]string, 0, len(targets))
	for id := range targets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	report := StatusReport{Targets: make([]TargetStatus, 0, len(ids))}
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
		report.Targets = append(report.Targets, TargetStatus{Status: targets[id].Connection.Status(), Resources: []ResourceStatus{}})
	}
	for _, gv := range m.GroupVersions() {
		ts := &report.Targets[index[gv.Target.ID]]
		resources := gv.Resources()
		switch {
		case gv.Unserved():
			ts.Unserved = append(ts.Unserved, gv.Proxy.GroupVersion.String())
		case len(resources) == 0:
			ts.Undiscovered = append(ts.Undiscovered, gv.Proxy.GroupVersion.String())
		}
		for _, res := range resources {
			snap := res.Cache.Snapshot()
			ts.Resources = append(ts.Resources, ResourceStatus{
				Group:           res.GVR.Group,
				Version:         res.GVR.Version,
				Resource:        res.GVR.Resource,
				Objects:         snap.Len(),
				ResourceVersion: strconv.FormatUint(snap.ResourceVersion(), 10),
				Synced:          res.Cache.Synced(),
				Watchers:        res.Cache.WatcherCount(),
			})
		}
	}
	return report
}

// statusHandler answers /status with the current StatusReport as JSON.
func statusHandler(report func() StatusReport) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		writeJSON(w, http.StatusOK, report())
	})
}
