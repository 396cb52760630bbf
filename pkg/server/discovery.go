package server

import (
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// discovery answers /apis, /apis/<group> and /apis/<group>/<version> for
// the proxied group/versions, from what the mirror discovered (and
// persisted), so it answers while a target is down. /apis is the
// aggregated document when the Accept header asks for it (as the
// aggregator of the client cluster does), the legacy APIGroupList
// otherwise.
func (h *apiHandler) discovery(w http.ResponseWriter, r *http.Request, _ *request.RequestInfo) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || parts[0] != "apis" || len(parts) > 3 {
		notFound(w, r)
		return
	}
	aggregated, err := negotiateDiscovery(r, len(parts) == 1)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case aggregated:
		h.aggregatedDiscovery(w, r)
		return
	}
	switch len(parts) {
	case 1:
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		for _, g := range h.groups() {
			list.Groups = append(list.Groups, g)
		}
		writeJSON(w, http.StatusOK, list)
	case 2:
		for _, g := range h.groups() {
			if g.Name == parts[1] {
				g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
				writeJSON(w, http.StatusOK, g)
				return
			}
		}
		notFound(w, r)
	case 3:
		gv := h.mirror.GroupVersion(parts[1], parts[2])
		if gv == nil {
			notFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, resourceList(gv))
	default:
		notFound(w, r)
	}
}

// groups lists the proxied groups with their versions, in configuration
// order (sorted by group, then version).
func (h *apiHandler) groups() []metav1.APIGroup {
	var out []metav1.APIGroup
	index := map[string]int{}
	for _, gv := range h.mirror.GroupVersions() {
		g := gv.Proxy.GroupVersion
		v := metav1.GroupVersionForDiscovery{GroupVersion: g.String(), Version: g.Version}
		i, ok := index[g.Group]
		if !ok {
			index[g.Group] = len(out)
			out = append(out, metav1.APIGroup{Name: g.Group, PreferredVersion: v})
			i = len(out) - 1
		}
		out[i].Versions = append(out[i].Versions, v)
	}
	return out
}

// resourceList is the discovery document of one group/version: the
// configured resources and their served subresources, as the target
// describes them.
func resourceList(gv *mirror.GroupVersion) metav1.APIResourceList {
	list := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.Proxy.GroupVersion.String(),
		APIResources: []metav1.APIResource{},
	}
	for _, res := range gv.Resources() {
		list.APIResources = append(list.APIResources, res.API())
		list.APIResources = append(list.APIResources, res.Subresources()...)
	}
	return list
}
