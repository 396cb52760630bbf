package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// benchObjects returns n objects of about size bytes of JSON each, in 50
// namespaces, with resourceVersions 1..n.
func benchObjects(b *testing.B, n, size int) []*Object {
	b.Helper()
	out := make([]*Object, n)
	for i := range out {
		j := objJSON(fmt.Sprintf("ns-%02d", i%50), fmt.Sprintf("obj-%06d", i), fmt.Sprintf("uid-%d", i), uint64(i+1),
			map[string]string{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "app": fmt.Sprint("a", i%10)}, 0)
		j = objJSON(fmt.Sprintf("ns-%02d", i%50), fmt.Sprintf("obj-%06d", i), fmt.Sprintf("uid-%d", i), uint64(i+1),
			map[string]string{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "app": fmt.Sprint("a", i%10)}, max(0, size-len(j)))
		o, err := NewObject(j)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = o
	}
	return out
}

// BenchmarkOpen100k measures Open (and Close) of a file with one cache of
// 100,000 objects of 1 KiB: the time until crproxy serves after a restart.
func BenchmarkOpen100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "store.db")
	s, err := Open(path, Options{Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Cache(testKey).Replace(benchObjects(b, 100000, 1024), 100000); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(path, Options{Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		if c := s.Cache(testKey); c.Snapshot().Len() != 100000 || !c.Synced() {
			b.Fatal("not loaded")
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
}

// BenchmarkWatchFanout1000 measures one event delivered to 1,000 watchers,
// each driven by its own goroutine blocked in Next, and reports the memory
// an idle watcher costs: heap (the Watcher) and heap+stack (with its
// goroutine).
func BenchmarkWatchFanout1000(b *testing.B) {
	const watchers = 1000
	c := newTestCache(b, Options{Logger: zap.NewNop()})
	if err := c.Replace(nil, 1); err != nil {
		b.Fatal(err)
	}
	objs := benchObjects(b, 1, 1024)

	// The Watchers alone.
	var m0, m1, m2 runtime.MemStats
	settle()
	runtime.ReadMemStats(&m0)
	ws := make([]*Watcher, watchers)
	for i := range ws {
		w, _, err := c.Watch(0, false)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	settle()
	runtime.ReadMemStats(&m1)

	// And a goroutine for each, blocked in Next.
	var received atomic.Int64
	var round atomic.Pointer[chan struct{}]
	next := make(chan struct{})
	round.Store(&next)
	var wg sync.WaitGroup
	var blocked atomic.Int64
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			blocked.Add(1)
			for {
				if _, err := w.Next(context.Background()); err != nil {
					return
				}
				if received.Add(1)%watchers == 0 {
					close(*round.Load())
				}
			}
		}()
	}
	for blocked.Load() < watchers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	settle()
	runtime.ReadMemStats(&m2)
	heap := float64(m1.HeapAlloc-m0.HeapAlloc) / watchers
	withGoroutine := (float64(m2.HeapAlloc+m2.StackInuse) - float64(m0.HeapAlloc+m0.StackInuse)) / watchers

	rv := uint64(1)
	for b.Loop() {
		done := make(chan struct{})
		round.Store(&done)
		rv++
		o := *objs[0]
		o.ResourceVersion = rv
		if err := c.Update(&o); err != nil {
			b.Fatal(err)
		}
		<-done
	}
	b.ReportMetric(heap, "heapB/watcher")
	b.ReportMetric(withGoroutine, "B/watcher+goroutine")
	for _, w := range ws {
		w.Stop()
	}
	wg.Wait()
}

// BenchmarkSnapshotAscend10k walks a snapshot of 10,000 objects: all of
// them, one namespace of 200 (a range scan), and a page of 500 after a
// continue key.
func BenchmarkSnapshotAscend10k(b *testing.B) {
	c := newTestCache(b, Options{Logger: zap.NewNop()})
	if err := c.Replace(benchObjects(b, 10000, 1024), 10000); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name                string
		ns, afterNs, afterN string
		limit, want         int
	}{
		{name: "all", want: 10000},
		{name: "namespace", ns: "ns-17", want: 200},
		{name: "page-after-key", afterNs: "ns-25", afterN: "obj-004025", limit: 500, want: 500},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			bytes := 0
			for b.Loop() {
				s := c.Snapshot()
				n := 0
				s.Ascend(tc.ns, tc.afterNs, tc.afterN, func(o *Object) bool {
					n++
					bytes += len(o.JSON)
					return tc.limit == 0 || n < tc.limit
				})
				if n != tc.want {
					b.Fatalf("%d objects, want %d", n, tc.want)
				}
			}
			_ = bytes
		})
	}
}

// BenchmarkNewObject decodes the metadata of a 1 KiB object.
func BenchmarkNewObject(b *testing.B) {
	j := benchObjects(b, 1, 1024)[0].JSON
	b.SetBytes(int64(len(j)))
	for b.Loop() {
		if _, err := NewObject(j); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate measures the writer path of one event (a modification)
// in a cache of 10,000 and 100,000 objects, persistence included (the
// flusher commits in the background), and reports what each event keeps
// alive while it is in the buffer besides its JSON: the Object, the buffer
// entry and the copy-on-write tree path of its snapshot.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newTestCache(b, Options{Logger: zap.NewNop()})
			objs := benchObjects(b, n, 1024)
			if err := c.Replace(objs, uint64(n)); err != nil {
				b.Fatal(err)
			}
			update := func(i int) {
				cp := *objs[(i*7919)%n] // a new Object sharing the JSON
				cp.ResourceVersion = c.ResourceVersion() + 1
				if err := c.Update(&cp); err != nil {
					b.Fatal(err)
				}
			}
			var m0, m1 runtime.MemStats
			_ = c.store.Flush()
			settle()
			runtime.ReadMemStats(&m0)
			for i := range defaultEventBufferSize { // fill the buffer
				update(i)
			}
			_ = c.store.Flush()
			settle()
			runtime.ReadMemStats(&m1)
			perEvent := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / defaultEventBufferSize
			i := 0
			for b.Loop() {
				update(i)
				i++
			}
			b.ReportMetric(perEvent, "B/kept-event")
		})
	}
}

// settle collects garbage twice: bbolt returns its pages to a sync.Pool,
// which only the second collection empties.
func settle() {
	runtime.GC()
	runtime.GC()
}
