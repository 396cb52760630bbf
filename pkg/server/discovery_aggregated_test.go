package server

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// discoveryTestGroupVersions: example.com v1 (widgets with status, a
// cluster-scoped gadget) and v1beta1, other.io v1 not discovered yet.
func discoveryTestGroupVersions() []discoveredGroupVersion {
	crudVerbs := metav1.Verbs{"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"}
	widgets := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"},
		metav1.APIResource{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget", Verbs: crudVerbs,
			ShortNames: []string{"wd"}, Categories: []string{"all", "toys"}, StorageVersionHash: "abc="},
		metav1.APIResource{Name: "widgets/status", Namespaced: true, Kind: "Widget", Verbs: metav1.Verbs{"get", "patch", "update"}})
	gadgets := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"},
		metav1.APIResource{Name: "gadgets", SingularName: "gadget", Kind: "Gadget", Verbs: crudVerbs})
	oldWidgets := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"},
		metav1.APIResource{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget", Verbs: crudVerbs})
	return []discoveredGroupVersion{
		{schema.GroupVersion{Group: "other.io", Version: "v1"}, nil},
		{schema.GroupVersion{Group: "example.com", Version: "v1beta1"}, []*mirror.Resource{oldWidgets}},
		{schema.GroupVersion{Group: "example.com", Version: "v1"}, []*mirror.Resource{widgets, gadgets}},
	}
}

// TestBuildAggregatedDiscovery: each resource as apiextensions-apiserver
// describes a custom resource, the status subresource included.
func TestBuildAggregatedDiscovery(t *testing.T) {
	got := buildAggregatedDiscovery(discoveryTestGroupVersions())
	crudVerbs := metav1.Verbs{"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"}
	widget := &metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	want := apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{
		{ObjectMeta: metav1.ObjectMeta{Name: "example.com"}, Versions: []apidiscoveryv2.APIVersionDiscovery{
			{Version: "v1", Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent, Resources: []apidiscoveryv2.APIResourceDiscovery{
				{Resource: "gadgets", SingularResource: "gadget", Scope: apidiscoveryv2.ScopeCluster,
					ResponseKind: &metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}, Verbs: crudVerbs},
				{Resource: "widgets", SingularResource: "widget", Scope: apidiscoveryv2.ScopeNamespace, ResponseKind: widget,
					Verbs: crudVerbs, ShortNames: []string{"wd"}, Categories: []string{"all", "toys"},
					Subresources: []apidiscoveryv2.APISubresourceDiscovery{{Subresource: "status", ResponseKind: widget, Verbs: metav1.Verbs{"get", "patch", "update"}}}},
			}},
			{Version: "v1beta1", Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent, Resources: []apidiscoveryv2.APIResourceDiscovery{
				{Resource: "widgets", SingularResource: "widget", Scope: apidiscoveryv2.ScopeNamespace,
					ResponseKind: &metav1.GroupVersionKind{Group: "example.com", Version: "v1beta1", Kind: "Widget"}, Verbs: crudVerbs},
			}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other.io"}, Versions: []apidiscoveryv2.APIVersionDiscovery{
			{Version: "v1", Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent},
		}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestServeAggregatedDiscovery: the document, its headers and ETag are the
// bytes kube-apiserver's aggregated discovery handler serves for the same
// group/versions (as CRDs register them: group priority 1000, version
// priority 100); If-None-Match with the ETag is 304.
func TestServeAggregatedDiscovery(t *testing.T) {
	list := buildAggregatedDiscovery(discoveryTestGroupVersions())
	manager := aggregated.NewResourceManager("apis")
	for _, g := range list.Items {
		for _, v := range g.Versions {
			manager.AddGroupVersion(g.Name, v)
			manager.SetGroupVersionPriority(metav1.GroupVersion{Group: g.Name, Version: v.Version}, 1000, 100)
		}
	}
	get := func(h http.Handler, ifNoneMatch string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/apis", nil)
		r.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")
		if ifNoneMatch != "" {
			r.Header.Set("If-None-Match", ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	crproxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveAggregatedDiscovery(w, r, list) })
	got, want := get(crproxy, ""), get(manager, "")
	if got.Code != http.StatusOK || got.Body.String() != want.Body.String() {
		t.Errorf("%d\n%s\nwant %d\n%s", got.Code, got.Body.String(), want.Code, want.Body.String())
	}
	for _, h := range []string{"Content-Type", "ETag", "Vary", "Cache-Control"} {
		if got.Header().Get(h) != want.Header().Get(h) || got.Header().Get(h) == "" {
			t.Errorf("%s: %q, want %q", h, got.Header().Get(h), want.Header().Get(h))
		}
	}
	etag := got.Header().Get("ETag")
	if rec := get(crproxy, etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match %s: %d %q, want 304 and no body", etag, rec.Code, rec.Body.String())
	}
	if rec := get(crproxy, `"stale"`); rec.Code != http.StatusOK {
		t.Errorf("If-None-Match stale: %d, want 200", rec.Code)
	}
}
