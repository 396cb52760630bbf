package server

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// aggregatedDiscoveryContentType is the Content-Type of an aggregated
// discovery document, as the apiserver writes it (the media type with the
// negotiated g, v and as): the aggregator and client-go check it before
// they decode, and fall back to the legacy documents otherwise.
const aggregatedDiscoveryContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// aggregatedDiscoveryRestrictions admit only the aggregated discovery kind
// of kube-apiserver 1.36 (aggregated.DiscoveryEndpointRestrictions with
// AggregatedDiscoveryRemoveBetaType locked on: v2beta1 is gone).
type aggregatedDiscoveryRestrictions struct{}

func (aggregatedDiscoveryRestrictions) AllowsMediaTypeTransform(_, _ string, gvk *schema.GroupVersionKind) bool {
	return gvk != nil && *gvk == apidiscoveryv2.SchemeGroupVersion.WithKind("APIGroupDiscoveryList")
}

func (aggregatedDiscoveryRestrictions) AllowsServerVersion(string) bool  { return false }
func (aggregatedDiscoveryRestrictions) AllowsStreamSchema(s string) bool { return s == "watch" }

// negotiateDiscovery chooses between the aggregated document (only at
// /apis) and the legacy ones as the apiserver's discovery wrapper does: any
// clause asking for APIGroupDiscoveryList v2 wins, wherever it is;
// otherwise the legacy document, which takes only clauses without a
// conversion; a header with neither is 406.
func negotiateDiscovery(r *http.Request, root bool) (aggregated bool, err error) {
	accept := r.Header.Get("Accept")
	if root && accept != "" {
		if _, ok := negotiation.NegotiateMediaTypeOptions(accept, servedMediaTypes, aggregatedDiscoveryRestrictions{}); ok {
			return true, nil
		}
	}
	if _, ok := negotiation.NegotiateMediaTypeOptions(accept, servedMediaTypes, negotiation.DefaultEndpointRestrictions); !ok {
		return false, notAcceptable
	}
	return false, nil
}

// aggregatedDiscovery answers /apis as an APIGroupDiscoveryList, with the
// apiserver's ETag (so the aggregator's periodic fetch is a 304 while
// nothing changed) and cache headers.
func (h *apiHandler) aggregatedDiscovery(w http.ResponseWriter, r *http.Request) {
	gvs := h.mirror.GroupVersions()
	discovered := make([]discoveredGroupVersion, 0, len(gvs))
	for _, gv := range gvs {
		discovered = append(discovered, discoveredGroupVersion{gv.Proxy.GroupVersion, gv.Resources()})
	}
	serveAggregatedDiscovery(w, r, buildAggregatedDiscovery(discovered))
}

// serveAggregatedDiscovery writes list as the apiserver's aggregated
// discovery handler does.
func serveAggregatedDiscovery(w http.ResponseWriter, r *http.Request, list apidiscoveryv2.APIGroupDiscoveryList) {
	// The apiserver hashes the document before it carries its TypeMeta.
	data, err := json.Marshal(list)
	if err != nil {
		writeError(w, err)
		return
	}
	etag := strconv.Quote(fmt.Sprintf("%X", sha512.Sum512(data)))
	w.Header().Set("ETag", etag)
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Cache-Control", "public")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	list.TypeMeta = metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: apidiscoveryv2.SchemeGroupVersion.String()}
	if data, err = json.Marshal(list); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", aggregatedDiscoveryContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(data, '\n'))
}

// discoveredGroupVersion is one proxied group/version and the resources
// the mirror discovered for it.
type discoveredGroupVersion struct {
	groupVersion schema.GroupVersion
	resources    []*mirror.Resource
}

// buildAggregatedDiscovery is the aggregated document of the proxied
// group/versions, each resource described as apiextensions-apiserver
// describes a custom resource (from the target's discovery entry, so
// verbs, short names and categories are the target's), with the status
// subresource where the target serves it. Groups are sorted by name (they
// share one priority), versions by kube-aware version order, resources by
// name; a group/version not discovered yet is listed without resources.
func buildAggregatedDiscovery(gvs []discoveredGroupVersion) apidiscoveryv2.APIGroupDiscoveryList {
	list := apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	index := map[string]int{}
	for _, gv := range gvs {
		g := gv.groupVersion
		i, ok := index[g.Group]
		if !ok {
			i = len(list.Items)
			index[g.Group] = i
			list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.Group}})
		}
		list.Items[i].Versions = append(list.Items[i].Versions, versionDiscovery(g.Version, gv.resources))
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for _, g := range list.Items {
		sort.SliceStable(g.Versions, func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(g.Versions[i].Version, g.Versions[j].Version) > 0
		})
	}
	return list
}

// versionDiscovery describes one group/version's resources.
func versionDiscovery(v string, resources []*mirror.Resource) apidiscoveryv2.APIVersionDiscovery {
	out := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
	for _, res := range resources {
		out.Resources = append(out.Resources, resourceDiscovery(res))
	}
	sort.Slice(out.Resources, func(i, j int) bool { return out.Resources[i].Resource < out.Resources[j].Resource })
	return out
}

// resourceDiscovery is apiextensions-apiserver's aggregated entry of a
// custom resource, built from the target's legacy entry.
func resourceDiscovery(res *mirror.Resource) apidiscoveryv2.APIResourceDiscovery {
	api := res.API()
	scope := apidiscoveryv2.ScopeCluster
	if api.Namespaced {
		scope = apidiscoveryv2.ScopeNamespace
	}
	kind := &metav1.GroupVersionKind{Group: res.GVR.Group, Version: res.GVR.Version, Kind: api.Kind}
	d := apidiscoveryv2.APIResourceDiscovery{
		Resource:         res.GVR.Resource,
		ResponseKind:     kind,
		Scope:            scope,
		SingularResource: api.SingularName,
		Verbs:            api.Verbs,
		ShortNames:       api.ShortNames,
		Categories:       api.Categories,
	}
	for _, sub := range res.Subresources() {
		_, name, _ := strings.Cut(sub.Name, "/")
		// The legacy entry names another kind (autoscaling/v1 Scale) in
		// Group and Version; empty ones mean the resource's own.
		subKind := &metav1.GroupVersionKind{Group: sub.Group, Version: sub.Version, Kind: sub.Kind}
		if sub.Group == "" && sub.Version == "" {
			subKind = &metav1.GroupVersionKind{Group: res.GVR.Group, Version: res.GVR.Version, Kind: sub.Kind}
		}
		d.Subresources = append(d.Subresources, apidiscoveryv2.APISubresourceDiscovery{
			Subresource:  name,
			ResponseKind: subKind,
			Verbs:        sub.Verbs,
		})
	}
	return d
}
