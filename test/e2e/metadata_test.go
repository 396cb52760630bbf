package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// The Accept headers of metadata-only reads: JSON only, and what
// client-go's metadata client sends (protobuf first, which crproxy leaves
// to the JSON fallback).
const (
	acceptMetadata           = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
	acceptMetadataList       = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
	acceptMetadataClient     = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1," + acceptMetadata + ",application/json"
	acceptMetadataListClient = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1," + acceptMetadataList + ",application/json"
)

// A client-go metadata informer in the client cluster, with streaming
// lists (WatchListClient) on and off, syncs and sees an object added,
// changed and deleted at the target, as PartialObjectMetadata.
func TestMetadataInformerWithAndWithoutWatchList(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	const ns = "meta-informer-ns"
	createAtTarget(t, ctx, target, ns, "client", []string{"m-0"}, "")
	startProxy(t, client, crproxytest.Config("client", client, target))
	targetClient := dynamicClient(t, target).Resource(crproxytest.MyResources).Namespace(ns)

	original := clientfeatures.FeatureGates()
	t.Cleanup(func() { clientfeatures.ReplaceFeatureGates(original) })
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("WatchListClient=%v", on), func(t *testing.T) {
			clientfeatures.ReplaceFeatureGates(watchListGate{Gates: original, on: on})
			mc, err := metadata.NewForConfig(client.RESTConfig())
			if err != nil {
				t.Fatal(err)
			}
			factory := metadatainformer.NewFilteredSharedInformerFactory(mc, 0, ns, nil)
			informer := factory.ForResource(crproxytest.MyResources).Informer()
			var mu sync.Mutex
			seen := map[string]string{} // name -> label "changed", or "deleted"
			record := func(obj any, deleted bool) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				m, ok := obj.(*metav1.PartialObjectMetadata)
				if !ok {
					t.Errorf("informer object is %T, want *PartialObjectMetadata", obj)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if deleted {
					seen[m.Name] = "deleted"
				} else {
					seen[m.Name] = m.Labels["changed"]
				}
			}
			_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { record(obj, false) },
				UpdateFunc: func(_, obj any) { record(obj, false) },
				DeleteFunc: func(obj any) { record(obj, true) },
			})
			ictx, cancel := context.WithCancel(ctx)
			defer cancel()
			factory.Start(ictx.Done())
			syncCtx, cancelSync := context.WithTimeout(ictx, 30*time.Second)
			defer cancelSync()
			if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced) {
				t.Fatal("metadata informer did not sync within 30s")
			}
			obj, ok, err := informer.GetStore().GetByKey(ns + "/m-0")
			if m, _ := obj.(*metav1.PartialObjectMetadata); err != nil || !ok || m.UID == "" || m.Labels["vcluster.com/owner-vcluster"] != "client" {
				t.Fatalf("synced store has m-0 = %#v (%v, %v); want its metadata with the owner labels", obj, ok, err)
			}
			waitSeen := func(name, want string) {
				t.Helper()
				crproxytest.Eventually(t, ctx, 15*time.Second, func() string {
					mu.Lock()
					defer mu.Unlock()
					if seen[name] != want {
						return fmt.Sprintf("informer saw %v; want %s %q", seen, name, want)
					}
					return ""
				})
			}
			name := fmt.Sprintf("m-%v", on)
			if _, err := targetClient.Create(ctx, crproxytest.OwnedMyResource(ns, name, name, "client"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitSeen(name, "")
			kubectl(t, ctx, target, "label", "myresource", name, "-n", ns, "changed=yes")
			waitSeen(name, "yes")
			if err := targetClient.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitSeen(name, "deleted")
		})
	}
}

// endpoint is a server raw requests are sent to, as an admin.
type endpoint struct {
	name string
	base string
	hc   *http.Client
}

func newEndpoint(t *testing.T, name string, cfg *rest.Config) endpoint {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return endpoint{name: name, base: strings.TrimSuffix(cfg.Host, "/"), hc: hc}
}

// proxyEndpoint reaches crproxy itself (not through the aggregator) with
// the client cluster admin's certificate.
func proxyEndpoint(t *testing.T, p *crproxytest.Proxy) endpoint {
	cfg, err := p.DirectConfig(localcluster.AdminUser, "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	return newEndpoint(t, "crproxy", cfg)
}

func (e endpoint) get(t *testing.T, ctx context.Context, path, accept string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	return send(t, e.hc, req)
}

// watchEvent is one decoded watch event.
type watchEvent struct {
	Type   string         `json:"type"`
	Object map[string]any `json:"object"`
}

// watchResult is what a watch answered.
type watchResult struct {
	code        int
	contentType string
	events      []watchEvent
}

// watch opens a watch and reads events until the server ends it or done
// says enough. It does not fail the test, so goroutines may call it.
func (e endpoint) watch(ctx context.Context, path, accept string, done func([]watchEvent) bool) (watchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		return watchResult{}, err
	}
	req.Header.Set("Accept", accept)
	resp, err := e.hc.Do(req)
	if err != nil {
		return watchResult{}, fmt.Errorf("%s: watch %s: %w", e.name, path, err)
	}
	defer resp.Body.Close()
	r := watchResult{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return r, fmt.Errorf("%s: watch %s: %d %s", e.name, path, resp.StatusCode, body)
	}
	dec := json.NewDecoder(resp.Body)
	for !done(r.events) {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				break
			}
			return r, fmt.Errorf("%s: watch %s: %w", e.name, path, err)
		}
		r.events = append(r.events, ev)
	}
	return r, nil
}

func decodeBody(t *testing.T, who string, a answer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("%s: %d %q: %v\n%s", who, a.code, a.header.Get("Content-Type"), err, a.body)
	}
	return m
}

// itemsByName returns the items of a list or the objects of events, keyed
// by name.
func itemsByName(items []any) map[string]any {
	out := map[string]any{}
	for _, it := range items {
		m, _ := it.(map[string]any)
		md, _ := m["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		out[name] = it
	}
	return out
}

func jsonString(v any) string {
	data, _ := json.MarshalIndent(v, "", "  ")
	return string(data)
}

// Metadata-only get, list and watch, straight to crproxy and through the
// client cluster's apiserver, answer what the target kube-apiserver
// answers for the same request on the same objects (it serves the CRD
// natively): the same PartialObjectMetadata(List), the same 406s, the same
// watch events, the watch-list's closing bookmark included.
func TestMetadataReadsMatchTarget(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.SharedAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareTarget(t, ctx, target)
	const ns = "meta-raw-ns"
	createAtTarget(t, ctx, target, ns, "client", []string{"r-1", "r-2", "r-3"}, "")
	kubectl(t, ctx, target, "annotate", "myresource", "r-1", "-n", ns, "example.com/note=first")
	p := startProxy(t, client, crproxytest.Config("client", client, target))

	tgt := newEndpoint(t, "target", target.RESTConfig())
	servers := []endpoint{proxyEndpoint(t, p), newEndpoint(t, "client apiserver", client.RESTConfig())}
	objects := "/apis/example.com/v1/namespaces/" + ns + "/myresources"
	// Only this client's objects are in the namespace, so crproxy's
	// selection and the target's are the same objects.
	const v1beta1 = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"

	t.Run("get", func(t *testing.T) {
		want := decodeBody(t, "target", tgt.get(t, ctx, objects+"/r-1", acceptMetadata))
		if want["kind"] != "PartialObjectMetadata" {
			t.Fatalf("target answered %v", want)
		}
		wantBeta := decodeBody(t, "target", tgt.get(t, ctx, objects+"/r-1", v1beta1))
		for _, s := range servers {
			for _, c := range []struct {
				accept string
				want   map[string]any
			}{{acceptMetadata, want}, {acceptMetadataClient, want}, {v1beta1, wantBeta}} {
				a := s.get(t, ctx, objects+"/r-1", c.accept)
				got := decodeBody(t, s.name, a)
				if a.code != http.StatusOK || a.header.Get("Content-Type") != "application/json" || !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s: get with %q: %d %q\n%s\nwant\n%s", s.name, c.accept, a.code, a.header.Get("Content-Type"), jsonString(got), jsonString(c.want))
				}
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, query := range []string{"", "?limit=2"} {
			want := decodeBody(t, "target", tgt.get(t, ctx, objects+query, acceptMetadataList))
			wantItems, _ := want["items"].([]any)
			if want["kind"] != "PartialObjectMetadataList" || len(wantItems) == 0 {
				t.Fatalf("target answered %v", want)
			}
			wantMeta, _ := want["metadata"].(map[string]any)
			for _, s := range servers {
				a := s.get(t, ctx, objects+query, acceptMetadataListClient)
				got := decodeBody(t, s.name, a)
				gotMeta, _ := got["metadata"].(map[string]any)
				gotItems, _ := got["items"].([]any)
				switch {
				case a.code != http.StatusOK || got["kind"] != want["kind"] || got["apiVersion"] != want["apiVersion"]:
					t.Errorf("%s: list%s: %d %v %v", s.name, query, a.code, got["kind"], got["apiVersion"])
				case !reflect.DeepEqual(gotItems, wantItems):
					t.Errorf("%s: list%s items:\n%s\nwant\n%s", s.name, query, jsonString(gotItems), jsonString(wantItems))
				case gotMeta["resourceVersion"] == "" || gotMeta["resourceVersion"] == nil:
					t.Errorf("%s: list%s has no resourceVersion: %v", s.name, query, gotMeta)
				case (gotMeta["continue"] == nil) != (wantMeta["continue"] == nil):
					t.Errorf("%s: list%s continue %v, the target's %v", s.name, query, gotMeta["continue"], wantMeta["continue"])
				}
			}
		}
		// An empty list: the same "items" as the target's.
		empty := "/apis/example.com/v1/namespaces/meta-empty-ns/myresources"
		var want struct{ Items json.RawMessage }
		_ = json.Unmarshal(tgt.get(t, ctx, empty, acceptMetadataList).body, &want)
		for _, s := range servers {
			var got struct{ Items json.RawMessage }
			_ = json.Unmarshal(s.get(t, ctx, empty, acceptMetadataListClient).body, &got)
			if string(got.Items) != string(want.Items) {
				t.Errorf("%s: empty list items %s, the target's %s", s.name, got.Items, want.Items)
			}
		}
	})

	t.Run("conversions that do not apply", func(t *testing.T) {
		// An object as a list is a 500 at the target ("content is not
		// a list"), a list as an object 406.
		for _, c := range []struct{ path, accept string }{
			{objects + "/r-1", acceptMetadataList},
			{objects, acceptMetadata},
		} {
			want := tgt.get(t, ctx, c.path, c.accept).status(t)
			if want.Code < 400 {
				t.Fatalf("target answered %d to %s with %s", want.Code, c.path, c.accept)
			}
			for _, s := range servers {
				got := s.get(t, ctx, c.path, c.accept).status(t)
				if got.Code != want.Code || got.Reason != want.Reason || got.Message != want.Message {
					t.Errorf("%s: %s with %q: %d %s %q; want %d %s %q", s.name, c.path, c.accept, got.Code, got.Reason, got.Message, want.Code, want.Reason, want.Message)
				}
			}
		}
		// What nobody can convert to is 406 everywhere.
		const v2 = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2"
		if code := tgt.get(t, ctx, objects, v2).code; code != http.StatusNotAcceptable {
			t.Fatalf("target answered %d to %s", code, v2)
		}
		for _, s := range servers {
			if got := s.get(t, ctx, objects, v2).status(t); got.Code != http.StatusNotAcceptable || !strings.HasPrefix(got.Message, "only the following media types are accepted: application/json") {
				t.Errorf("%s: %s: %d %q", s.name, v2, got.Code, got.Message)
			}
		}
	})

	// initialEvents reads a watch that starts with the current state until
	// it has n ADDED events (and, with the closing bookmark, that too).
	initialEvents := func(s endpoint, query, accept string, n int, bookmark bool) []watchEvent {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		want := n
		if bookmark {
			want++
		}
		r, err := s.watch(wctx, objects+query, accept, func(evs []watchEvent) bool { return len(evs) >= want })
		if err != nil || r.contentType != "application/json" || len(r.events) < want {
			t.Fatalf("%s: watch%s: %v %q, events %v", s.name, query, err, r.contentType, r.events)
		}
		return r.events
	}
	compareAdded := func(s endpoint, got, want []watchEvent) {
		t.Helper()
		var gotObjects, wantObjects []any
		for _, ev := range got {
			if ev.Type == "ADDED" {
				gotObjects = append(gotObjects, ev.Object)
			}
		}
		for _, ev := range want {
			if ev.Type == "ADDED" {
				wantObjects = append(wantObjects, ev.Object)
			}
		}
		if g, w := itemsByName(gotObjects), itemsByName(wantObjects); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: ADDED objects:\n%s\nwant\n%s", s.name, jsonString(g), jsonString(w))
		}
	}

	t.Run("watch from resourceVersion 0", func(t *testing.T) {
		const query = "?watch=true&resourceVersion=0&timeoutSeconds=15"
		want := initialEvents(tgt, query, acceptMetadata, 3, false)
		for _, s := range servers {
			compareAdded(s, initialEvents(s, query, acceptMetadataClient, 3, false), want)
		}
	})

	t.Run("watch-list", func(t *testing.T) {
		const query = "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=15"
		want := initialEvents(tgt, query, acceptMetadata, 3, true)
		wantBookmark := want[len(want)-1]
		if wantBookmark.Type != "BOOKMARK" {
			t.Fatalf("target's watch-list ended with %v", wantBookmark)
		}
		for _, s := range servers {
			got := initialEvents(s, query, acceptMetadataClient, 3, true)
			compareAdded(s, got, want)
			bookmark := got[len(got)-1]
			if bookmark.Type != "BOOKMARK" || !sameShape(bookmark.Object, wantBookmark.Object) {
				t.Errorf("%s: watch-list ends with %s\n%s\nwant %s\n%s", s.name, bookmark.Type, jsonString(bookmark.Object), wantBookmark.Type, jsonString(wantBookmark.Object))
			}
		}
	})

	t.Run("watch a change", func(t *testing.T) {
		// One watch per server from its own list's resourceVersion; one
		// change at the target; every watch sees it the same.
		all := append([]endpoint{tgt}, servers...)
		results := make([][]watchEvent, len(all))
		errs := make([]error, len(all))
		var wg sync.WaitGroup
		for i, s := range all {
			var list struct {
				Metadata metav1.ListMeta
			}
			if err := json.Unmarshal(s.get(t, ctx, objects, acceptMetadataList).body, &list); err != nil || list.Metadata.ResourceVersion == "" {
				t.Fatalf("%s: list: %v %v", s.name, err, list)
			}
			accept := acceptMetadataClient
			if s.name == "target" {
				accept = acceptMetadata
			}
			query := "?watch=true&timeoutSeconds=15&resourceVersion=" + list.Metadata.ResourceVersion
			wg.Add(1)
			go func() {
				defer wg.Done()
				wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				r, err := s.watch(wctx, objects+query, accept, func(evs []watchEvent) bool {
					return len(evs) > 0 && evs[len(evs)-1].Type == "MODIFIED"
				})
				results[i], errs[i] = r.events, err
			}()
		}
		time.Sleep(time.Second) // let the watches open
		kubectl(t, ctx, target, "label", "myresource", "r-2", "-n", ns, "changed=yes")
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		want := results[0]
		if len(want) == 0 || want[len(want)-1].Type != "MODIFIED" {
			t.Fatalf("target's watch: %v", want)
		}
		for i, s := range servers {
			got := results[i+1]
			if len(got) == 0 || !reflect.DeepEqual(got[len(got)-1], want[len(want)-1]) {
				t.Errorf("%s: watch events\n%s\nwant the last of\n%s", s.name, jsonString(got), jsonString(want))
			}
		}
	})

	t.Run("watch as a list", func(t *testing.T) {
		// The apiserver cannot convert a watch event to a list: 200, then
		// the stream ends without an event.
		const query = "?watch=true&resourceVersion=0&timeoutSeconds=10"
		for _, s := range append([]endpoint{tgt}, servers...) {
			start := time.Now()
			r, err := s.watch(ctx, objects+query, acceptMetadataList, func([]watchEvent) bool { return false })
			if err != nil || r.code != http.StatusOK || len(r.events) != 0 || time.Since(start) > 8*time.Second {
				t.Errorf("%s: watch with %q: %v %d, %d events after %v; want 200 and the stream ended at once without events", s.name, acceptMetadataList, err, r.code, len(r.events), time.Since(start))
			}
		}
	})
}

// sameShape compares two bookmark objects: the same kind, apiVersion,
// metadata members and annotations (their resourceVersions are each
// server's own).
func sameShape(a, b map[string]any) bool {
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	am, _ := a["metadata"].(map[string]any)
	bm, _ := b["metadata"].(map[string]any)
	return a["kind"] == b["kind"] && a["apiVersion"] == b["apiVersion"] &&
		reflect.DeepEqual(keys(a), keys(b)) && reflect.DeepEqual(keys(am), keys(bm)) &&
		reflect.DeepEqual(am["annotations"], bm["annotations"])
}
