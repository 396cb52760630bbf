package mirror

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// TestDiscoveryPollerWakesOnChange: the poller asks with the last ETag,
// a 304 changes nothing, a changed entry of any group/version wakes the
// subscribers with its new digest, and a target without aggregated
// discovery wakes them at every poll.
func TestDiscoveryPollerWakesOnChange(t *testing.T) {
	var doc atomic.Value
	doc.Store(`{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":"example.com"},"versions":[{"version":"v1","resources":[{"resource":"things"}]}]}]}`)
	var legacy atomic.Bool
	var lastIfNoneMatch atomic.Value
	lastIfNoneMatch.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/apis" {
			http.NotFound(w, r)
			return
		}
		lastIfNoneMatch.Store(r.Header.Get("If-None-Match"))
		if legacy.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"kind":"APIGroupList","groups":[]}`))
			return
		}
		body := doc.Load().(string)
		etag := `"` + strings.Repeat("x", len(body)%7) + `"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), "as=APIGroupDiscoveryList") {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", acceptAggregatedDiscovery)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	host, _ := url.Parse(srv.URL + "/prefix")
	p := newDiscoveryPoller(&Target{ID: "p/t", httpClient: srv.Client(), Host: host, Connection: reconnect.NewTracker("p/t", reconnect.Options{})})
	ctx := context.Background()
	gv := schema.GroupVersion{Group: "example.com", Version: "v1"}
	mustPoll := func() {
		t.Helper()
		if err := p.poll(ctx); err != nil {
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

	fp0, changed := p.state(gv)
	mustPoll()
	fp1, next := p.state(gv)
	if fp0 != "" || fp1 == "" || !woken(changed) {
		t.Fatalf("first document: digest %q -> %q, woken %v", fp0, fp1, woken(changed))
	}
	mustPoll()
	if got := lastIfNoneMatch.Load(); got == "" {
		t.Error("the second poll sent no If-None-Match")
	}
	if fp, _ := p.state(gv); fp != fp1 || woken(next) {
		t.Fatalf("a 304 changed the digest (%q) or woke subscribers (%v)", fp, woken(next))
	}

	doc.Store(`{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":"example.com"},"versions":[{"version":"v1","resources":[{"resource":"things","shortNames":["th"]}]}]}]}`)
	mustPoll()
	fp2, after := p.state(gv)
	if fp2 == fp1 || !woken(next) {
		t.Fatalf("a changed entry: digest %q -> %q, woken %v", fp1, fp2, woken(next))
	}

	legacy.Store(true)
	mustPoll()
	fp3, again := p.state(gv)
	if fp3 != "" || !woken(after) {
		t.Fatalf("legacy discovery: digest %q, woken %v", fp3, woken(after))
	}
	mustPoll()
	if !woken(again) {
		t.Fatal("legacy discovery: the next poll did not wake the subscribers")
	}
}

// TestGroupVersionPlan: what a discovery document adds, describes anew and
// drops, for configured and wildcard keys.
func TestGroupVersionPlan(t *testing.T) {
	verbs := metav1.Verbs{"get", "list"}
	api := func(name, kind string, namespaced bool, shortNames ...string) metav1.APIResource {
		return metav1.APIResource{Name: name, Kind: kind, Namespaced: namespaced, Verbs: verbs, ShortNames: shortNames}
	}
	status := func(name, kind string) metav1.APIResource {
		return metav1.APIResource{Name: name + "/status", Kind: kind, Namespaced: true, Verbs: metav1.Verbs{"get", "patch", "update"}}
	}
	scale := metav1.APIResource{Name: "things/scale", Group: "autoscaling", Version: "v1", Kind: "Scale", Namespaced: true}
	existing := func() map[string]*Resource {
		gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1"}
		things := gvr
		things.Resource = "things"
		others := gvr
		others.Resource = "others"
		return map[string]*Resource{
			"things": NewResource(things, api("things", "Thing", true, "th"), status("things", "Thing")),
			"others": NewResource(others, api("others", "Other", true)),
		}
	}
	type want struct{ added, changed, removed, missing string }
	for _, c := range []struct {
		name     string
		wildcard bool
		list     []metav1.APIResource
		want     want
	}{
		{"unchanged", false, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing"), api("others", "Other", true)}, want{}},
		{"a scale subresource added", false, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing"), scale, api("others", "Other", true)}, want{changed: "things"}},
		{"a subresource crproxy does not serve changes nothing", false, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing"), {Name: "things/exec", Namespaced: true}, api("others", "Other", true)}, want{}},
		{"short names changed", false, []metav1.APIResource{api("things", "Thing", true, "th", "thg"), status("things", "Thing"), api("others", "Other", true)}, want{changed: "things"}},
		{"status subresource gone", false, []metav1.APIResource{api("things", "Thing", true, "th"), api("others", "Other", true)}, want{changed: "things"}},
		{"deleted", false, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing")}, want{removed: "others", missing: "others"}},
		{"scope changed", false, []metav1.APIResource{api("things", "Thing", false, "th"), status("things", "Thing"), api("others", "Other", true)}, want{added: "things", removed: "things"}},
		{"kind changed", false, []metav1.APIResource{api("things", "Thingy", true, "th"), status("things", "Thing"), api("others", "Other", true)}, want{added: "things", removed: "things"}},
		{"a resource not configured is not added", false, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing"), api("others", "Other", true), api("news", "New", true)}, want{}},
		{"a wildcard adds it", true, []metav1.APIResource{api("things", "Thing", true, "th"), status("things", "Thing"), api("others", "Other", true), api("news", "New", true)}, want{added: "news"}},
		{"the group/version is gone", true, nil, want{removed: "others,things"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			gvp := config.GroupVersionProxy{GroupVersion: schema.GroupVersion{Group: "example.com", Version: "v1"}, Wildcard: c.wildcard}
			if !c.wildcard {
				gvp.Resources = []string{"others", "things"}
			}
			gv := &GroupVersion{Proxy: gvp, resources: existing()}
			p := gv.plan(&metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: c.list})
			var added, changed []string
			for _, s := range p.added {
				added = append(added, s.api.Name)
			}
			for name := range p.redescribed {
				changed = append(changed, name)
			}
			removed := resourceNames(p.removed)
			sort.Strings(changed)
			sort.Strings(removed)
			got := want{strings.Join(added, ","), strings.Join(changed, ","), strings.Join(removed, ","), strings.Join(p.missing, ",")}
			if got != c.want {
				t.Fatalf("plan: %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestPlanWithoutDrops: drops that wait keep the resource, and the
// resource of another kind or scope that would replace it waits with
// them; other additions and changes go ahead.
func TestPlanWithoutDrops(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}
	things := NewResource(gvr, metav1.APIResource{Name: "things", Kind: "Thing"})
	others := NewResource(gvr.GroupVersion().WithResource("others"), metav1.APIResource{Name: "others", Kind: "Other"})
	p := discoveryPlan{
		added:       []*servedAPI{{api: metav1.APIResource{Name: "things", Kind: "Thingy"}}, {api: metav1.APIResource{Name: "news", Kind: "New"}}},
		redescribed: map[string]*servedAPI{"olds": {api: metav1.APIResource{Name: "olds"}}},
		removed:     []*Resource{things, others},
	}
	w := p.withoutDrops()
	if len(w.removed) != 0 || len(w.added) != 1 || w.added[0].api.Name != "news" || len(w.redescribed) != 1 {
		t.Fatalf("without drops: %+v", w)
	}
}
