package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
)

// op is one writer call in a table.
type op struct {
	kind string // add, update, delete, bookmark
	ns   string
	name string
	rv   uint64
}

func apply(t *testing.T, c *Cache, ops []op) {
	t.Helper()
	for _, p := range ops {
		var err error
		switch p.kind {
		case "add":
			err = c.Add(o(t, p.ns, p.name, p.rv))
		case "update":
			err = c.Update(o(t, p.ns, p.name, p.rv))
		case "delete":
			err = c.Delete(o(t, p.ns, p.name, p.rv))
		case "bookmark":
			c.Bookmark(p.rv)
		default:
			t.Fatalf("unknown op %q", p.kind)
		}
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
	}
}

func TestChangesAndEventsInOrder(t *testing.T) {
	tests := []struct {
		name   string
		ops    []op
		events []ev
		keys   []string
		rv     uint64
	}{
		{
			name:   "add, update, delete",
			ops:    []op{{"add", "ns", "a", 10}, {"update", "ns", "a", 11}, {"delete", "ns", "a", 12}},
			events: []ev{{watch.Added, "ns/a", 10}, {watch.Modified, "ns/a", 11}, {watch.Deleted, "ns/a", 12}},
			keys:   nil,
			rv:     12,
		},
		{
			name:   "add of a held object is a modification, update of a missing one an addition",
			ops:    []op{{"add", "", "c", 3}, {"add", "", "c", 4}, {"update", "ns", "b", 5}},
			events: []ev{{watch.Added, "/c", 3}, {watch.Modified, "/c", 4}, {watch.Added, "ns/b", 5}},
			keys:   []string{"/c", "ns/b"},
			rv:     5,
		},
		{
			name:   "delete of an unknown object moves the resourceVersion without an event",
			ops:    []op{{"add", "ns", "a", 1}, {"delete", "ns", "zz", 2}, {"add", "ns", "b", 3}},
			events: []ev{{watch.Added, "ns/a", 1}, {watch.Added, "ns/b", 3}},
			keys:   []string{"ns/a", "ns/b"},
			rv:     3,
		},
		{
			name:   "bookmarks are not events",
			ops:    []op{{"add", "ns", "a", 1}, {"bookmark", "", "", 5}, {"update", "ns", "a", 6}, {"bookmark", "", "", 9}},
			events: []ev{{watch.Added, "ns/a", 1}, {watch.Modified, "ns/a", 6}},
			keys:   []string{"ns/a"},
			rv:     9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Options{})
			w, _, err := c.Watch(0, false)
			mustNil(t, err)
			defer w.Stop()
			apply(t, c, tt.ops)
			if got := drain(t, w, len(tt.events)); !slices.Equal(got, tt.events) {
				t.Errorf("events = %v, want %v", got, tt.events)
			}
			if pendingNow(w) {
				t.Error("more events than expected")
			}
			if got := keys(c.Snapshot(), ""); !slices.Equal(got, tt.keys) {
				t.Errorf("content = %v, want %v", got, tt.keys)
			}
			if got := c.ResourceVersion(); got != tt.rv {
				t.Errorf("ResourceVersion() = %d, want %d", got, tt.rv)
			}
		})
	}
}

func TestEventObjects(t *testing.T) {
	c := newTestCache(t, Options{})
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	a1, a2, a3 := o(t, "ns", "a", 1), o(t, "ns", "a", 2), o(t, "ns", "a", 3)
	mustNil(t, c.Add(a1))
	mustNil(t, c.Update(a2))
	mustNil(t, c.Delete(a3))
	want := []Event{
		{Type: watch.Added, Object: a1, ResourceVersion: 1},
		{Type: watch.Modified, Object: a2, PrevObject: a1, ResourceVersion: 2},
		{Type: watch.Deleted, Object: a3, PrevObject: a2, ResourceVersion: 3},
	}
	for _, we := range want {
		got, err := w.Next(context.Background())
		mustNil(t, err)
		if got != we {
			t.Errorf("event = %+v, want %+v", got, we)
		}
	}
}

func TestGet(t *testing.T) {
	c := newTestCache(t, Options{})
	a := o(t, "ns", "a", 4)
	mustNil(t, c.Add(a))
	c.Bookmark(8)
	got, rv, ok := c.Get("ns", "a")
	if !ok || got != a || rv != 8 {
		t.Errorf("Get = %v, %d, %v; want %v, 8, true", got, rv, ok, a)
	}
	if _, rv, ok := c.Get("ns", "b"); ok || rv != 8 {
		t.Errorf("Get of a missing object = %d, %v", rv, ok)
	}
	if _, _, ok := c.Get("", "a"); ok {
		t.Error("Get found ns/a as cluster-scoped")
	}
}

func TestStaleChangesAreDropped(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, c *Cache) error
	}{
		{"add at the same resourceVersion", func(t *testing.T, c *Cache) error { return c.Add(o(t, "ns", "new", 10)) }},
		{"update below", func(t *testing.T, c *Cache) error { return c.Update(o(t, "ns", "a", 9)) }},
		{"delete below", func(t *testing.T, c *Cache) error { return c.Delete(o(t, "ns", "a", 2)) }},
		{"replace below", func(t *testing.T, c *Cache) error { return c.Replace(nil, 9) }},
		{"bookmark below", func(t *testing.T, c *Cache) error { c.Bookmark(3); return ErrStaleResourceVersion }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Options{})
			mustNil(t, c.Replace([]*Object{o(t, "ns", "a", 5)}, 10))
			w, _, err := c.Watch(0, false)
			mustNil(t, err)
			before := c.Snapshot()
			if err := tt.do(t, c); !errors.Is(err, ErrStaleResourceVersion) {
				t.Fatalf("error = %v, want ErrStaleResourceVersion", err)
			}
			if c.Snapshot() != before || c.ResourceVersion() != 10 || pendingNow(w) {
				t.Error("a stale change changed the cache")
			}
		})
	}
}

func TestBookmarkWakesWatchers(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 5))
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	if got := w.ResourceVersion(); got != 5 {
		t.Errorf("ResourceVersion() = %d, want 5", got)
	}
	got := make(chan Event, 1)
	go func() {
		e, err := w.NextOrBookmark(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	time.Sleep(10 * time.Millisecond)
	c.Bookmark(7)
	select {
	case e := <-got:
		if e.Type != watch.Bookmark || e.ResourceVersion != 7 || e.Object != nil {
			t.Errorf("NextOrBookmark = %+v, want a bookmark at 7", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a bookmark did not wake the watcher")
	}
	if got := w.ResourceVersion(); got != 7 {
		t.Errorf("ResourceVersion() = %d, want 7", got)
	}
	// Once per advance; an event comes before any bookmark.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if e, err := w.NextOrBookmark(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second NextOrBookmark = %+v, %v; want the deadline", e, err)
	}
	mustNil(t, c.Add(o(t, "ns", "a", 8)))
	c.Bookmark(9)
	if e, _ := w.NextOrBookmark(context.Background()); e.Type != watch.Added || e.ResourceVersion != 8 {
		t.Errorf("got %v, want the event at 8", short(e))
	}
	if e, _ := w.NextOrBookmark(context.Background()); e.Type != watch.Bookmark || e.ResourceVersion != 9 {
		t.Errorf("got %v, want the bookmark at 9", short(e))
	}
}

func TestWaitForResourceVersion(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 5))
	mustNil(t, c.WaitForResourceVersion(context.Background(), 5))
	mustNil(t, c.WaitForResourceVersion(context.Background(), 1))

	tests := []struct {
		name string
		do   func()
	}{
		{"an event", func() { mustNil(t, c.Add(o(t, "ns", "a", c.ResourceVersion()+10))) }},
		{"a bookmark", func() { c.Bookmark(c.ResourceVersion() + 10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := c.ResourceVersion() + 10
			done := make(chan error, 1)
			go func() { done <- c.WaitForResourceVersion(context.Background(), want) }()
			select {
			case err := <-done:
				t.Fatalf("returned %v before the cache reached %d", err, want)
			case <-time.After(20 * time.Millisecond):
			}
			tt.do()
			select {
			case err := <-done:
				mustNil(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("not woken")
			}
		})
	}

	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.WaitForResourceVersion(ctx, 1000); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("store closes", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- c.WaitForResourceVersion(context.Background(), 1000) }()
		time.Sleep(10 * time.Millisecond)
		mustNil(t, c.store.Close())
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("error = %v, want ErrClosed", err)
		}
	})
}

func TestReset(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.SetClusterUID("old"))
	mustNil(t, c.Replace([]*Object{o(t, "ns", "a", 3), o(t, "ns", "b", 4)}, 10))
	old := c.Snapshot()
	w1, _, err := c.Watch(0, false)
	mustNil(t, err)
	w2, _, err := c.Watch(10, false)
	mustNil(t, err)
	blocked := make(chan error, 1)
	go func() {
		_, err := w1.Next(context.Background())
		blocked <- err
	}()
	time.Sleep(10 * time.Millisecond)

	mustNil(t, c.Reset("new"))

	if err := <-blocked; !errors.Is(err, ErrExpired) {
		t.Errorf("blocked Next = %v, want ErrExpired", err)
	}
	// w2 had an event pending: the reset wins, its history is gone.
	if _, err := w2.Next(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("Next = %v, want ErrExpired", err)
	}
	if n := c.WatcherCount(); n != 0 {
		t.Errorf("WatcherCount() = %d, want 0", n)
	}
	if c.ResourceVersion() != 0 || c.Synced() || c.ClusterUID() != "new" || c.Snapshot().Len() != 0 {
		t.Errorf("after Reset: rv %d, synced %v, uid %q, len %d", c.ResourceVersion(), c.Synced(), c.ClusterUID(), c.Snapshot().Len())
	}
	if old.Len() != 2 {
		t.Error("Reset changed a snapshot taken before it")
	}
	if _, _, err := c.Watch(3, false); !errors.Is(err, ErrResourceVersionTooLarge) {
		t.Errorf("Watch(3) after Reset = %v, want ErrResourceVersionTooLarge", err)
	}
	w1.Stop()
	w2.Stop()

	// The cache is usable again, at the new cluster's resourceVersions.
	w3, _, err := c.Watch(0, false)
	mustNil(t, err)
	mustNil(t, c.Replace([]*Object{o(t, "x", "y", 2)}, 2))
	if got := drain(t, w3, 1); got[0] != (ev{watch.Added, "x/y", 2}) {
		t.Errorf("after Reset: %v", got)
	}
	if !c.Synced() || c.WatcherCount() != 1 {
		t.Errorf("synced %v, watchers %d", c.Synced(), c.WatcherCount())
	}
	// A resourceVersion of the old cluster below the new list's does not
	// resume: the first sync's gap starts at 0.
	if _, _, err := c.Watch(1, false); !errors.Is(err, ErrExpired) {
		t.Errorf("Watch(1) after the new cluster's first list at 2 = %v, want ErrExpired", err)
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s, _ := openStore(t, Options{})
	c := s.Cache(testKey)
	mustNil(t, c.Add(o(t, "ns", "a", 1)))
	mustNil(t, s.Close())
	for name, err := range map[string]error{
		"add":     c.Add(o(t, "ns", "b", 2)),
		"replace": c.Replace(nil, 3),
		"uid":     c.SetClusterUID("x"),
		"reset":   c.Reset("x"),
		"new":     s.Cache(Key{Target: "other"}).Add(o(t, "ns", "b", 2)),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, _, ok := c.Get("ns", "a"); !ok {
		t.Error("reads stopped after Close")
	}
	if _, _, err := c.Watch(0, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
	mustNil(t, s.Close())
}
