package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestAscend(t *testing.T) {
	c := newTestCache(t, Options{})
	var list []*Object
	for i, k := range []string{"a/x", "a/y", "a-b/x", "a.b/x", "b/m", "b/n", "b/o", "/cluster", "ab/z"} {
		ns, name, _ := cutKey([]byte(k))
		list = append(list, o(t, string(ns), string(name), uint64(i+1)))
	}
	mustNil(t, c.Replace(list, 100))
	s := c.Snapshot()
	tests := []struct {
		name                          string
		namespace, afterNs, afterName string
		limit                         int
		want                          []string
	}{
		{name: "all, in etcd key order", want: []string{"/cluster", "a-b/x", "a.b/x", "a/x", "a/y", "ab/z", "b/m", "b/n", "b/o"}},
		{name: "one namespace", namespace: "b", want: []string{"b/m", "b/n", "b/o"}},
		{name: "a namespace that is a prefix of others", namespace: "a", want: []string{"a/x", "a/y"}},
		{name: "a namespace with none", namespace: "zz", want: nil},
		{name: "cluster-scoped key", namespace: "", afterNs: "", afterName: "cluster", want: []string{"a-b/x", "a.b/x", "a/x", "a/y", "ab/z", "b/m", "b/n", "b/o"}},
		{name: "after an existing key", afterNs: "a", afterName: "x", want: []string{"a/y", "ab/z", "b/m", "b/n", "b/o"}},
		{name: "after a missing key", afterNs: "b", afterName: "mm", want: []string{"b/n", "b/o"}},
		{name: "after the last key", afterNs: "b", afterName: "o", want: nil},
		{name: "namespace and after-key inside it", namespace: "b", afterNs: "b", afterName: "m", want: []string{"b/n", "b/o"}},
		{name: "namespace and after-key before it", namespace: "b", afterNs: "a", afterName: "y", want: []string{"b/m", "b/n", "b/o"}},
		{name: "namespace and after-key past it", namespace: "a", afterNs: "b", afterName: "a", want: nil},
		{name: "stop early", limit: 2, want: []string{"/cluster", "a-b/x"}},
		{name: "stop early in a namespace", namespace: "b", limit: 1, want: []string{"b/m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			s.Ascend(tt.namespace, tt.afterNs, tt.afterName, func(o *Object) bool {
				got = append(got, o.Key())
				return tt.limit == 0 || len(got) < tt.limit
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("Ascend(%q, %q, %q) = %v, want %v", tt.namespace, tt.afterNs, tt.afterName, got, tt.want)
			}
		})
	}
	if s.Len() != len(list) || s.ResourceVersion() != 100 {
		t.Errorf("Len() = %d, ResourceVersion() = %d", s.Len(), s.ResourceVersion())
	}
}

// TestSnapshotAtEveryResourceVersion records the content after every
// change and checks that SnapshotAt returns exactly it for every
// resourceVersion of the window, and ErrExpired before.
func TestSnapshotAtEveryResourceVersion(t *testing.T) {
	const size = 50
	c := newTestCache(t, Options{EventBufferSize: size})
	mustNil(t, c.Replace(nil, 3))
	want := map[uint64]string{3: ""}
	content := map[string]uint64{}
	render := func() string {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(content)) {
			out = append(out, fmt.Sprintf("%s@%d", k, content[k]))
		}
		return fmt.Sprint(out)
	}
	r := rand.New(rand.NewPCG(3, 3))
	rv := uint64(3)
	var snaps []*Snapshot
	for range 200 {
		rv += uint64(1 + r.IntN(3)) // gaps between resourceVersions, as in a real target
		name := fmt.Sprint(r.IntN(20))
		if _, ok := content["ns/"+name]; ok && r.IntN(3) == 0 {
			mustNil(t, c.Delete(o(t, "ns", name, rv)))
			delete(content, "ns/"+name)
		} else if r.IntN(10) == 0 {
			c.Bookmark(rv)
		} else {
			mustNil(t, c.Update(o(t, "ns", name, rv)))
			content["ns/"+name] = rv
		}
		want[rv] = render()
		snaps = append(snaps, c.Snapshot())
	}
	render2 := func(s *Snapshot) string {
		var out []string
		s.Ascend("", "", "", func(o *Object) bool {
			out = append(out, fmt.Sprintf("%s@%d", o.Key(), o.ResourceVersion))
			return true
		})
		return fmt.Sprint(out)
	}
	oldest := c.head.Load().startRV
	checked := 0
	var state string
	for v := uint64(3); v <= rv; v++ {
		if s, ok := want[v]; ok {
			state = s
		}
		s, err := c.SnapshotAt(v)
		if v < oldest {
			if !errors.Is(err, ErrExpired) {
				t.Fatalf("SnapshotAt(%d) = %v, want ErrExpired (oldest %d)", v, err, oldest)
			}
			continue
		}
		mustNil(t, err)
		if got := render2(s); got != state || s.ResourceVersion() != v {
			t.Fatalf("SnapshotAt(%d) = %s at %d, want %s", v, got, s.ResourceVersion(), state)
		}
		checked++
	}
	if checked < size {
		t.Errorf("only %d resourceVersions in the window", checked)
	}
	// Snapshots taken along the way never changed.
	for _, s := range snaps {
		if got := render2(s); got != want[s.ResourceVersion()] {
			t.Fatalf("snapshot at %d changed: %s, want %s", s.ResourceVersion(), got, want[s.ResourceVersion()])
		}
	}
	if _, err := c.SnapshotAt(rv + 1); !errors.Is(err, ErrResourceVersionTooLarge) {
		t.Errorf("SnapshotAt(newer) = %v", err)
	}
}

// TestPaginationWhileObjectsChange lists 1,200 objects in pages of 500, as a
// server does with continue tokens (resourceVersion + last key), while a
// writer changes, adds and deletes objects: every object of the first
// page's snapshot comes exactly once, at its state in that snapshot.
func TestPaginationWhileObjectsChange(t *testing.T) {
	c := newTestCache(t, Options{EventBufferSize: 100000})
	var list []*Object
	for i := range 1200 {
		list = append(list, o(t, fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("obj-%04d", i), uint64(i+1)))
	}
	mustNil(t, c.Replace(list, 2000))
	first := c.Snapshot()
	want := map[string]*Object{}
	first.Ascend("", "", "", func(o *Object) bool { want[o.Key()] = o; return true })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(5, 5))
		for rv := uint64(2001); ; rv++ {
			select {
			case <-stop:
				return
			default:
			}
			i := r.IntN(1300)
			ns, name := fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("obj-%04d", i)
			var err error
			if r.IntN(4) == 0 {
				err = c.Delete(o(t, ns, name, rv))
			} else {
				err = c.Update(o(t, ns, name, rv))
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	mustNil(t, c.WaitForResourceVersion(context.Background(), 2100)) // the writer is busy

	for _, namespace := range []string{"", "ns-3"} {
		t.Run("namespace="+namespace, func(t *testing.T) {
			seen := map[string]int{}
			rv, afterNs, afterName := first.ResourceVersion(), "", ""
			pages := 0
			for {
				s, err := c.SnapshotAt(rv) // the continue token's resourceVersion
				mustNil(t, err)
				n := 0
				var last *Object
				s.Ascend(namespace, afterNs, afterName, func(o *Object) bool {
					if o != want[o.Key()] {
						t.Errorf("%s is not the first snapshot's state", o)
					}
					seen[o.Key()]++
					last = o
					n++
					return n < 500
				})
				pages++
				if n < 500 {
					break
				}
				afterNs, afterName = last.Namespace, last.Name
			}
			wantN := 0
			for k := range want {
				if namespace == "" || k[:len(namespace)+1] == namespace+"/" {
					wantN++
					if seen[k] != 1 {
						t.Errorf("%s seen %d times", k, seen[k])
					}
				}
			}
			if len(seen) != wantN {
				t.Errorf("saw %d objects, want %d", len(seen), wantN)
			}
			if namespace == "" && pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
		})
	}
}
