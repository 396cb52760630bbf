package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// apiserverPartial is what kube-apiserver makes of a custom resource for a
// metadata-only client (handlers.asPartialObjectMetadata): the object's
// metadata through ObjectMeta, as PartialObjectMetadata of version v, as
// generic JSON for comparison.
func apiserverPartial(t *testing.T, object []byte, v string) map[string]any {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(object); err != nil {
		t.Fatal(err)
	}
	partial := meta.AsPartialObjectMetadata(u)
	partial.SetGroupVersionKind(schema.GroupVersionKind{Group: metav1.GroupName, Version: v, Kind: "PartialObjectMetadata"})
	data, err := json.Marshal(partial)
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON(t, data)
}

func decodeJSON(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	return m
}

// testObject is data as the mirror stores it: compact JSON.
func testObject(t *testing.T, data string) *store.Object {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(data)); err != nil {
		t.Fatal(err)
	}
	o, err := store.NewObject(compact.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestMetadataObject: a get answers the stored metadata as a
// PartialObjectMetadata, equal to the apiserver's.
func TestMetadataObject(t *testing.T) {
	obj := testObject(t, tableTestObject)
	for _, v := range []string{"v1", "v1beta1"} {
		rec := httptest.NewRecorder()
		writeMetadataObject(rec, obj, output{format: formatMetadata, metaVersion: v})
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %q", v, rec.Code, rec.Header().Get("Content-Type"))
		}
		got := decodeJSON(t, rec.Body.Bytes())
		if want := apiserverPartial(t, obj.JSON, v); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", v, got, want)
		}
		if !strings.HasPrefix(rec.Body.String(), `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/`+v+`","metadata":{`) {
			t.Errorf("%s: %s", v, rec.Body.String())
		}
	}
}

// TestMetadataList: a list answers a PartialObjectMetadataList with the
// list's resourceVersion and continue token and the items' metadata.
func TestMetadataList(t *testing.T) {
	a := testObject(t, tableTestObject)
	b := testObject(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"b","namespace":"ns1","resourceVersion":"12","labels":{"x":"\"quoted\" }"}},"spec":{"metadata":{"name":"not this"}}}`)
	for _, c := range []struct {
		items []*store.Object
		meta  metav1.ListMeta
	}{
		{items: []*store.Object{a, b}, meta: metav1.ListMeta{ResourceVersion: "12", Continue: "abc"}},
		{items: nil, meta: metav1.ListMeta{ResourceVersion: "7"}},
	} {
		rec := httptest.NewRecorder()
		writeMetadataList(rec, c.items, c.meta, output{format: formatMetadataList, metaVersion: "v1"})
		got := decodeJSON(t, rec.Body.Bytes())
		wantMeta := map[string]any{"resourceVersion": c.meta.ResourceVersion}
		if c.meta.Continue != "" {
			wantMeta["continue"] = c.meta.Continue
		}
		var items any // null when empty, as the apiserver's
		if len(c.items) > 0 {
			items = []any{}
		}
		for _, o := range c.items {
			items = append(items.([]any), apiserverPartial(t, o.JSON, "v1"))
		}
		want := map[string]any{"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": wantMeta, "items": items}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
		// client-go's metadata client decodes it.
		var list metav1.PartialObjectMetadataList
		if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Items) != len(c.items) {
			t.Errorf("decode: %v, %d items", err, len(list.Items))
		}
	}
}

// testWatchStream is a metadata watch of Widgets writing to a recorder.
func testWatchStream(out output, bookmarks bool) (*watchStream, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	res := mirror.NewResource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"},
		metav1.APIResource{Name: "widgets", Kind: "Widget", Namespaced: true})
	opts := &readOptions{ListOptions: metav1.ListOptions{AllowWatchBookmarks: bookmarks}, labels: labels.Everything(), fields: fields.Everything()}
	return &watchStream{w: rec, res: res, opts: opts, format: out.format, metaAPIVersion: out.metaAPIVersion()}, rec
}

func watchEvents(t *testing.T, body []byte) []metav1.WatchEvent {
	t.Helper()
	var events []metav1.WatchEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev metav1.WatchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		events = append(events, ev)
	}
	return events
}

// TestMetadataWatch: events and bookmarks (the initial-events-end one
// included) carry PartialObjectMetadata, as the apiserver converts each
// event's object, its bookmark object too.
func TestMetadataWatch(t *testing.T) {
	obj := testObject(t, tableTestObject)
	moved, _ := obj.WithResourceVersion(20)
	stream, rec := testWatchStream(output{format: formatMetadata, metaVersion: "v1"}, true)
	stream.writeObject(watch.Added, obj.JSON)
	stream.writeBookmark(11, true)
	stream.writeEvent(store.Event{Type: watch.Deleted, Object: moved, ResourceVersion: 20})
	stream.writeBookmark(21, false)
	stream.flush()

	events := watchEvents(t, rec.Body.Bytes())
	bookmark := func(rv string, annotations map[string]string) []byte {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("example.com/v1")
		u.SetKind("Widget")
		u.SetResourceVersion(rv)
		u.SetAnnotations(annotations)
		data, _ := u.MarshalJSON()
		return data
	}
	want := []struct {
		typ    watch.EventType
		object []byte
	}{
		{watch.Added, obj.JSON},
		{watch.Bookmark, bookmark("11", map[string]string{metav1.InitialEventsAnnotationKey: "true"})},
		{watch.Deleted, moved.JSON},
		{watch.Bookmark, bookmark("21", nil)},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(events), len(want), rec.Body.String())
	}
	for i, w := range want {
		got := decodeJSON(t, events[i].Object.Raw)
		if events[i].Type != string(w.typ) || !reflect.DeepEqual(got, apiserverPartial(t, w.object, "v1")) {
			t.Errorf("event %d: %s %v\nwant %s %v", i, events[i].Type, got, w.typ, apiserverPartial(t, w.object, "v1"))
		}
	}

	// A watch without bookmarks gets none.
	stream, rec = testWatchStream(output{format: formatMetadata, metaVersion: "v1"}, false)
	stream.writeBookmark(11, false)
	stream.flush()
	if rec.Body.Len() != 0 {
		t.Errorf("bookmark sent without allowWatchBookmarks: %s", rec.Body.String())
	}
}

// TestMetadataListWatch: a watch asking for PartialObjectMetadataList
// ends at its first event with nothing written after the headers, as the
// apiserver's fails to encode it.
func TestMetadataListWatch(t *testing.T) {
	for _, first := range []string{"object", "bookmark"} {
		stream, rec := testWatchStream(output{format: formatMetadataList, metaVersion: "v1"}, true)
		if first == "object" {
			stream.writeObject(watch.Added, testObject(t, tableTestObject).JSON)
		} else {
			stream.writeBookmark(3, true)
		}
		stream.flush()
		if !stream.failed || rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("first %s: failed %v, %d %q; want the stream ended, 200 and no event", first, stream.failed, rec.Code, rec.Body.String())
		}
	}
}

// TestNegotiateJSONDoesNotAllocate: the plain JSON reads skip negotiation.
func TestNegotiateJSONDoesNotAllocate(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/apis/example.com/v1/widgets", nil)
	r.Header.Set("Accept", "application/json")
	if n := testing.AllocsPerRun(100, func() { _, _ = negotiate(r) }); n != 0 {
		t.Errorf("negotiate(application/json) allocates %v times", n)
	}
}
