package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
)

// history writes n changes (adds, updates, deletes over a few names) with
// resourceVersions 1..n, returning the events in order.
func history(t *testing.T, c *Cache, n int) []ev {
	t.Helper()
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	defer w.Stop()
	r := rand.New(rand.NewPCG(7, 7))
	var out []ev
	for rv := uint64(c.ResourceVersion() + 1); rv <= uint64(n); rv++ {
		name := fmt.Sprintf("o%d", r.IntN(8))
		if _, _, ok := c.Get("ns", name); ok && r.IntN(3) == 0 {
			mustNil(t, c.Delete(o(t, "ns", name, rv)))
		} else {
			mustNil(t, c.Update(o(t, "ns", name, rv)))
		}
		out = append(out, drain(t, w, 1)...)
	}
	return out
}

func TestWatchFromAKeptResourceVersion(t *testing.T) {
	all := history(t, newTestCache(t, Options{EventBufferSize: 20}), 50)
	tests := []struct {
		from    uint64
		want    []ev
		wantErr error
	}{
		{from: 30, want: all[30:]},
		{from: 31, want: all[31:]},
		{from: 42, want: all[42:]},
		{from: 50, want: nil},
		{from: 53, want: nil},
		{from: 55, want: nil},
		{from: 29, wantErr: ErrExpired},
		{from: 1, wantErr: ErrExpired},
		{from: 56, wantErr: ErrResourceVersionTooLarge},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.from), func(t *testing.T) {
			c := newTestCache(t, Options{EventBufferSize: 20})
			history(t, c, 50) // events 31..50 are kept
			c.Bookmark(55)
			w, _, err := c.Watch(tt.from, false)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Watch(%d) = %v, want %v", tt.from, err, tt.wantErr)
				}
				return
			}
			mustNil(t, err)
			defer w.Stop()
			if got := drain(t, w, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Errorf("events = %v, want %v", got, tt.want)
			}
			if pendingNow(w) {
				t.Error("more events than expected")
			}
			if w.ResourceVersion() != 55 {
				t.Errorf("ResourceVersion() = %d, want 55", w.ResourceVersion())
			}
			mustNil(t, c.Add(o(t, "other", fmt.Sprint(tt.from), c.ResourceVersion()+1)))
			if got := drain(t, w, 1); got[0].key != "other/"+fmt.Sprint(tt.from) {
				t.Errorf("the next live event = %v", got)
			}
		})
	}
}

func TestSlowWatcherExpires(t *testing.T) {
	c := newTestCache(t, Options{EventBufferSize: 8})
	mustNil(t, c.Replace(nil, 1))
	slow, _, err := c.Watch(0, false)
	mustNil(t, err)
	fast, _, err := c.Watch(0, false)
	mustNil(t, err)
	for rv := uint64(2); rv <= 9; rv++ { // exactly fills the buffer
		mustNil(t, c.Add(o(t, "ns", fmt.Sprint(rv), rv)))
		drain(t, fast, 1)
	}
	// The slow watcher can still read everything; one more event
	// overwrites its next one.
	if got := drain(t, slow, 1); got[0].rv != 2 {
		t.Fatalf("got %v", got)
	}
	for rv := uint64(10); rv <= 11; rv++ {
		mustNil(t, c.Add(o(t, "ns", fmt.Sprint(rv), rv)))
	}
	_, err = slow.Next(context.Background())
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Next = %v, want ErrExpired", err)
	}
	if _, err := slow.Next(context.Background()); !errors.Is(err, ErrExpired) {
		t.Error("an expired watcher came back")
	}
	if got := drain(t, fast, 2); got[1].rv != 11 {
		t.Errorf("fast watcher: %v", got)
	}
}

// TestWatchWithStateHasNoGapNoDuplicate starts watchers with state while a
// writer changes the cache, and checks that each watcher's snapshot plus
// its events rebuild exactly the cache's final content, with every event
// newer than the snapshot.
func TestWatchWithStateHasNoGapNoDuplicate(t *testing.T) {
	c := newTestCache(t, Options{EventBufferSize: 100000})
	mustNil(t, c.Replace(nil, 1))
	const changes = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 1))
		for rv := uint64(2); rv < changes; rv++ {
			name := fmt.Sprint(r.IntN(200))
			var err error
			if _, _, ok := c.Get("ns", name); ok && r.IntN(4) == 0 {
				err = c.Delete(o(t, "ns", name, rv))
			} else {
				err = c.Update(o(t, "ns", name, rv))
			}
			if err != nil {
				t.Error(err)
				return
			}
			if rv%10 == 0 {
				c.Bookmark(rv) // no-op: not newer
			}
		}
	}()
	type result struct {
		state map[string]uint64
		err   error
	}
	results := make(chan result, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 200 * time.Microsecond)
			w, snap, err := c.Watch(0, true)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer w.Stop()
			state := map[string]uint64{}
			snap.Ascend("", "", "", func(o *Object) bool { state[o.Key()] = o.ResourceVersion; return true })
			last := snap.ResourceVersion()
			for last < changes-1 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				e, err := w.Next(ctx)
				cancel()
				if err != nil {
					results <- result{err: err}
					return
				}
				if e.ResourceVersion <= last {
					results <- result{err: fmt.Errorf("event %v not after %d", short(e), last)}
					return
				}
				last = e.ResourceVersion
				switch e.Type {
				case watch.Added:
					if _, ok := state[e.Object.Key()]; ok {
						results <- result{err: fmt.Errorf("ADDED %v of an object already in the snapshot", short(e))}
						return
					}
					state[e.Object.Key()] = e.ResourceVersion
				case watch.Modified:
					if _, ok := state[e.Object.Key()]; !ok {
						results <- result{err: fmt.Errorf("MODIFIED %v of an object not in the snapshot", short(e))}
						return
					}
					state[e.Object.Key()] = e.ResourceVersion
				case watch.Deleted:
					delete(state, e.Object.Key())
				}
			}
			results <- result{state: state}
		}()
	}
	wg.Wait()
	close(results)
	want := map[string]uint64{}
	c.Snapshot().Ascend("", "", "", func(o *Object) bool { want[o.Key()] = o.ResourceVersion; return true })
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		if fmt.Sprint(r.state) != fmt.Sprint(want) {
			t.Errorf("rebuilt state differs from the cache:\n got %v\nwant %v", r.state, want)
		}
	}
}

func TestWatcherStopAndContext(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 1))
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	if c.WatcherCount() != 1 {
		t.Errorf("WatcherCount() = %d", c.WatcherCount())
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v, want Canceled", err)
	}
	// Still usable after its context ended.
	mustNil(t, c.Add(o(t, "ns", "a", 2)))
	drain(t, w, 1)

	done := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	w.Stop()
	w.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Stop = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not unblock Next")
	}
	if c.WatcherCount() != 0 {
		t.Errorf("WatcherCount() after Stop = %d", c.WatcherCount())
	}
}

func TestWatchersEndWhenTheStoreCloses(t *testing.T) {
	s, _ := openStore(t, Options{})
	c := s.Cache(testKey)
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	mustNil(t, s.Close())
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Next = %v, want ErrClosed", err)
	}
}

func TestWatcherResourceVersion(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 10))
	w, _, err := c.Watch(0, false)
	mustNil(t, err)
	mustNil(t, c.Add(o(t, "ns", "a", 11)))
	mustNil(t, c.Add(o(t, "ns", "b", 12)))
	c.Bookmark(15)
	// Events are pending: a bookmark now must not claim past them.
	if got := w.ResourceVersion(); got != 10 {
		t.Errorf("with 2 pending: %d, want 10", got)
	}
	drain(t, w, 1)
	if got := w.ResourceVersion(); got != 11 {
		t.Errorf("with 1 pending: %d, want 11", got)
	}
	drain(t, w, 1)
	if got := w.ResourceVersion(); got != 15 {
		t.Errorf("with none pending: %d, want 15", got)
	}
}

func TestWatcherPendingTellsWhetherNextWouldBlock(t *testing.T) {
	c := newTestCache(t, Options{})
	mustNil(t, c.Replace(nil, 1))
	w, _, err := c.Watch(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if w.Pending() {
		t.Fatal("a new watcher of an idle cache has something pending")
	}
	mustNil(t, c.Add(o(t, "ns", "a", 10)))
	if !w.Pending() {
		t.Fatal("an added object is not pending")
	}
	if _, err := w.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Pending() {
		t.Fatal("still pending after Next returned the only event")
	}
	c.Bookmark(20)
	if w.Pending() {
		t.Fatal("a bookmark (no event) made the watcher pending")
	}
}

// The event buffer is bounded in bytes as well as in events: one object
// rewritten many times, 1 MiB each, keeps only as many events as fit, a
// watch from before them gets ErrExpired (410), and the newest event is
// kept even when it alone is larger than the bound.
func TestEventBufferBoundedInBytes(t *testing.T) {
	const mib = 1 << 20
	c := newTestCache(t, Options{EventBufferSize: 10000, EventBufferBytes: 8 * mib})
	mustNil(t, c.Replace(nil, 1))
	for rv := uint64(2); rv <= 101; rv++ {
		mustNil(t, c.Update(obj(t, "ns", "big", "uid-big", rv, nil, mib)))
	}
	h := c.head.Load()
	if kept := h.next - h.first; kept < 6 || kept > 8 {
		t.Errorf("%d events of 1 MiB kept under an 8 MiB bound", kept)
	}
	if h.bytes > 8*mib {
		t.Errorf("the buffer holds %d bytes, over its bound of %d", h.bytes, 8*mib)
	}
	if _, _, err := c.Watch(50, false); !errors.Is(err, ErrExpired) {
		t.Errorf("watch from an event that left the buffer: %v, want ErrExpired", err)
	}
	w, _, err := c.Watch(100, false)
	mustNil(t, err)
	defer w.Stop()
	if got := drain(t, w, 1); len(got) != 1 || got[0].rv != 101 {
		t.Errorf("watch from the kept events: %v", got)
	}

	huge := newTestCache(t, Options{EventBufferBytes: mib})
	mustNil(t, huge.Replace(nil, 1))
	mustNil(t, huge.Update(obj(t, "ns", "huge", "uid-huge", 2, nil, 2*mib)))
	w2, _, err := huge.Watch(1, false)
	mustNil(t, err)
	defer w2.Stop()
	if got := drain(t, w2, 1); len(got) != 1 || got[0].rv != 2 {
		t.Errorf("the newest event larger than the bound: %v", got)
	}
}
