package mirror

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestCRDWarnings: the warnings of each version as apiextensions-apiserver
// computes them: the CRD's deprecationWarning, else "<group>/<version>
// <Kind> is deprecated" with the newest served, not deprecated, later
// version to use.
func TestCRDWarnings(t *testing.T) {
	crd := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"group": "example.com",
		"names": map[string]any{"plural": "widgets", "kind": "Widget"},
		"versions": []any{
			map[string]any{"name": "v1alpha1", "served": true, "deprecated": true},
			map[string]any{"name": "v1beta1", "served": true, "deprecated": true, "deprecationWarning": "v1beta1 goes away in June"},
			map[string]any{"name": "v1", "served": true},
			map[string]any{"name": "v2", "served": false},
			map[string]any{"name": "v1beta2", "served": true},
		},
	}}}
	group, plural, byVersion, served := crdWarnings(crd)
	if group != "example.com" || plural != "widgets" || !reflect.DeepEqual(served, []string{"v1alpha1", "v1beta1", "v1", "v1beta2"}) {
		t.Fatalf("group %q plural %q served %v", group, plural, served)
	}
	want := map[string][]string{
		"v1alpha1": {"example.com/v1alpha1 Widget is deprecated; use example.com/v1 Widget"},
		"v1beta1":  {"v1beta1 goes away in June"},
	}
	if !reflect.DeepEqual(byVersion, want) {
		t.Fatalf("warnings %v, want %v", byVersion, want)
	}
	only := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"group": "example.com", "names": map[string]any{"plural": "widgets", "kind": "Widget"},
		"versions": []any{map[string]any{"name": "v1", "served": true, "deprecated": true}},
	}}}
	if _, _, byVersion, _ := crdWarnings(only); !reflect.DeepEqual(byVersion["v1"], []string{"example.com/v1 Widget is deprecated"}) {
		t.Fatalf("the only version deprecated: %v", byVersion)
	}
}

// TestVersionWarningsObserve: only a successful read of a whole resource
// tells its version's warnings; the CRD watch, once it runs, wins.
func TestVersionWarningsObserve(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"}
	answer := func(method, path string, code int, warnings ...string) (*http.Request, *http.Response) {
		u, _ := url.Parse("https://target" + path)
		resp := &http.Response{StatusCode: code, Header: http.Header{}}
		for _, w := range warnings {
			resp.Header.Add("Warning", `299 - "`+w+`"`)
		}
		return &http.Request{Method: method, URL: u}, resp
	}
	var v targetCRDs
	v.observe(answer(http.MethodGet, "/prefix/apis/example.com/v1beta1/widgets", 200, "deprecated!"))
	if got := v.get(gvr); !reflect.DeepEqual(got, []string{"deprecated!"}) {
		t.Fatalf("after a list: %v", got)
	}
	for _, ignored := range [][2]string{
		{http.MethodPatch, "/apis/example.com/v1beta1/widgets"},
		{http.MethodGet, "/apis/example.com/v1beta1/namespaces/ns/widgets/w/scale"},
	} {
		v.observe(answer(ignored[0], ignored[1], 200, "admission says"))
	}
	v.observe(answer(http.MethodGet, "/apis/example.com/v1beta1/widgets", 404))
	if got := v.get(gvr); !reflect.DeepEqual(got, []string{"deprecated!"}) {
		t.Fatalf("after other answers: %v", got)
	}
	v.observe(answer(http.MethodGet, "/apis/example.com/v1beta1/widgets", 200))
	if got := v.get(gvr); got != nil {
		t.Fatalf("after a list without warnings: %v", got)
	}
	v.setWatching(true)
	v.setCRD("example.com", "widgets", 2, map[string][]string{"v1beta1": {"from the CRD"}}, []string{"v1beta1", "v1"})
	v.observe(answer(http.MethodGet, "/apis/example.com/v1beta1/widgets", 200, "stale"))
	if got := v.get(gvr); !reflect.DeepEqual(got, []string{"from the CRD"}) {
		t.Fatalf("with the CRD watch: %v", got)
	}
	v.setCRD("example.com", "widgets", 0, nil, nil)
	if got := v.get(gvr); got != nil {
		t.Fatalf("after the CRD was deleted: %v", got)
	}
}
