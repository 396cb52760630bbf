package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
)

func TestReplaceEmitsTheExactDifference(t *testing.T) {
	type item struct {
		ns, name, uid string
		rv            uint64
	}
	tests := []struct {
		name    string
		initial []item // Replace'd at 100 first
		list    []item
		rv      uint64
		events  []ev
	}{
		{
			name:    "added, modified, deleted, unchanged",
			initial: []item{{"ns", "keep", "", 50}, {"ns", "mod", "", 60}, {"ns", "gone", "", 70}, {"", "cluster-gone", "", 80}},
			list:    []item{{"ns", "keep", "", 50}, {"ns", "mod", "", 130}, {"ns", "new", "", 120}, {"ns2", "new", "", 110}},
			rv:      150,
			events: []ev{
				{watch.Added, "ns2/new", 110},
				{watch.Added, "ns/new", 120},
				{watch.Modified, "ns/mod", 130},
				{watch.Deleted, "/cluster-gone", 150},
				{watch.Deleted, "ns/gone", 150},
			},
		},
		{
			name:    "recreated under the same name: deleted and added",
			initial: []item{{"ns", "a", "uid-1", 50}},
			list:    []item{{"ns", "a", "uid-2", 120}},
			rv:      150,
			events:  []ev{{watch.Deleted, "ns/a", 120}, {watch.Added, "ns/a", 120}},
		},
		{
			name:    "nothing changed",
			initial: []item{{"ns", "a", "", 50}},
			list:    []item{{"ns", "a", "", 50}},
			rv:      200,
		},
		{
			name:    "everything deleted",
			initial: []item{{"ns", "a", "", 50}, {"ns", "b", "", 60}},
			rv:      200,
			events:  []ev{{watch.Deleted, "ns/a", 200}, {watch.Deleted, "ns/b", 200}},
		},
		{
			name:    "relist at the same resourceVersion",
			initial: []item{{"ns", "a", "", 50}},
			list:    []item{{"ns", "a", "", 50}},
			rv:      100,
		},
	}
	mk := func(t *testing.T, items []item) []*Object {
		var out []*Object
		for _, it := range items {
			uid := it.uid
			if uid == "" {
				uid = "uid-" + it.ns + "-" + it.name
			}
			out = append(out, obj(t, it.ns, it.name, uid, it.rv, nil, 0))
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Options{})
			initial := mk(t, tt.initial)
			mustNil(t, c.Replace(initial, 100))
			w, _, err := c.Watch(0, false)
			mustNil(t, err)
			list := mk(t, tt.list)
			mustNil(t, c.Replace(list, tt.rv))
			got := drain(t, w, len(tt.events))
			if !slices.Equal(got, tt.events) {
				t.Errorf("events = %v, want %v", got, tt.events)
			}
			if pendingNow(w) {
				t.Errorf("more events than %v", tt.events)
			}
			if c.ResourceVersion() != tt.rv {
				t.Errorf("ResourceVersion() = %d, want %d", c.ResourceVersion(), tt.rv)
			}
			// The content is the list; unchanged objects keep their
			// *Object, changed ones are the list's.
			snap := c.Snapshot()
			if snap.Len() != len(list) {
				t.Errorf("Len() = %d, want %d", snap.Len(), len(list))
			}
			for _, l := range list {
				got, ok := snap.Get(l.Namespace, l.Name)
				if !ok {
					t.Fatalf("%s missing", l.Key())
				}
				want := l
				for _, i := range initial {
					if i.Key() == l.Key() && i.ResourceVersion == l.ResourceVersion && i.UID == l.UID {
						want = i
					}
				}
				if got != want {
					t.Errorf("%s: got %p, want %p", l.Key(), got, want)
				}
			}
		})
	}
}

func TestReplaceFirstSync(t *testing.T) {
	c := newTestCache(t, Options{})
	if c.Synced() {
		t.Fatal("a new cache is synced")
	}
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	mustNil(t, c.Replace([]*Object{o(t, "b", "x", 30), o(t, "a", "y", 10), o(t, "a", "x", 20)}, 100))
	want := []ev{{watch.Added, "a/y", 10}, {watch.Added, "a/x", 20}, {watch.Added, "b/x", 30}}
	if got := drain(t, w, 3); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if !c.Synced() || c.ResourceVersion() != 100 {
		t.Errorf("synced %v at %d, want synced at 100", c.Synced(), c.ResourceVersion())
	}
}

func TestReplaceDeletionCarriesTheListResourceVersion(t *testing.T) {
	c := newTestCache(t, Options{})
	a := o(t, "ns", "a", 5)
	mustNil(t, c.Replace([]*Object{a}, 10))
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	mustNil(t, c.Replace(nil, 20))
	e, err := w.Next(context.Background())
	mustNil(t, err)
	if e.Type != watch.Deleted || e.PrevObject != a || e.ResourceVersion != 20 || e.Object.ResourceVersion != 20 {
		t.Fatalf("event = %+v", e)
	}
	back, err := NewObject(e.Object.JSON)
	mustNil(t, err)
	if back.ResourceVersion != 20 || back.UID != a.UID || !strings.Contains(string(e.Object.JSON), `"resourceVersion":"20"`) {
		t.Errorf("the deleted object's JSON = %s", e.Object.JSON)
	}
	if !strings.Contains(string(a.JSON), `"resourceVersion":"5"`) {
		t.Error("the held object was modified")
	}
}

func TestReplaceRejectsInvalidLists(t *testing.T) {
	tests := []struct {
		name string
		objs func(t *testing.T) []*Object
		want string
	}{
		{"object newer than the list", func(t *testing.T) []*Object { return []*Object{o(t, "ns", "a", 21)} }, "above the list's"},
		{"duplicate key", func(t *testing.T) []*Object { return []*Object{o(t, "ns", "a", 1), o(t, "ns", "a", 2)} }, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Options{})
			mustNil(t, c.Replace([]*Object{o(t, "ns", "x", 1)}, 10))
			before := c.Snapshot()
			err := c.Replace(tt.objs(t), 20)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if c.Snapshot() != before {
				t.Error("an invalid list changed the cache")
			}
		})
	}
}

func TestReplaceIsSeenWhole(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 1))
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	var list []*Object
	for i := range 50 {
		list = append(list, o(t, "ns", string(rune('a'+i%26))+string(rune('a'+i/26)), uint64(10+i)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustNil(t, c.Replace(list, 100))
	}()
	// Whenever the watcher sees any of the relist, it sees all of it.
	for {
		h := c.head.Load()
		if h.next > w.cursor {
			if n := h.next - w.cursor; n != 50 || h.snap.rv != 100 {
				t.Fatalf("saw %d events at rv %d", n, h.snap.rv)
			}
			break
		}
	}
	<-done
}

func TestSnapshotAtInsideARelistGapIsExpired(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace([]*Object{o(t, "ns", "a", 5), o(t, "ns", "b", 6)}, 10))
	mustNil(t, c.Add(o(t, "ns", "c", 12)))
	// Relist: b was deleted at some unknown point in (12, 30], d added at 20.
	mustNil(t, c.Replace([]*Object{o(t, "ns", "a", 5), o(t, "ns", "c", 12), o(t, "ns", "d", 20)}, 30))
	tests := []struct {
		rv      uint64
		keys    []string
		wantErr error
	}{
		{10, []string{"ns/a", "ns/b"}, nil},
		{11, []string{"ns/a", "ns/b"}, nil},
		{12, []string{"ns/a", "ns/b", "ns/c"}, nil},
		{13, nil, ErrExpired},
		{20, nil, ErrExpired},
		{29, nil, ErrExpired},
		{30, []string{"ns/a", "ns/c", "ns/d"}, nil},
		{31, nil, ErrResourceVersionTooLarge},
	}
	for _, tt := range tests {
		s, err := c.SnapshotAt(tt.rv)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("SnapshotAt(%d) = %v, want %v", tt.rv, err, tt.wantErr)
			}
			continue
		}
		mustNil(t, err)
		if got := keys(s, ""); !slices.Equal(got, tt.keys) || s.ResourceVersion() != tt.rv {
			t.Errorf("SnapshotAt(%d) = %v at %d, want %v", tt.rv, got, s.ResourceVersion(), tt.keys)
		}
	}
	// A watch cannot resume inside the gap: an object created and deleted
	// there was never seen, so its deletion could not be sent. At the
	// gap's edge it resumes.
	if _, _, err := c.Watch(20, false); !errors.Is(err, ErrExpired) {
		t.Errorf("Watch(20) inside the gap = %v, want ErrExpired", err)
	}
	w, _, err := c.Watch(12, false)
	mustNil(t, err)
	if got := drain(t, w, 1); got[0].rv <= 12 {
		t.Errorf("watch from 12: %v", got)
	}
}

func TestReplaceLargerThanTheBuffer(t *testing.T) {
	c := newTestCache(t, Options{EventBufferSize: 10})
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	var list []*Object
	for i := range 100 {
		list = append(list, o(t, "ns", "o"+string(rune('A'+i/10))+string(rune('0'+i%10)), uint64(i+1)))
	}
	mustNil(t, c.Replace(list, 200))
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("Next = %v, want ErrExpired", err)
	}
	// The first sync has no history before its list: a watch from inside
	// it is expired, a watch from the list's resourceVersion resumes.
	if _, _, err := c.Watch(90, false); !errors.Is(err, ErrExpired) {
		t.Errorf("Watch(90) = %v, want ErrExpired", err)
	}
	if _, _, err := c.Watch(200, false); err != nil {
		t.Errorf("Watch(200) = %v", err)
	}
	if c.Snapshot().Len() != 100 {
		t.Errorf("Len() = %d", c.Snapshot().Len())
	}
}
