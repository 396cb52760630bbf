package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
)

// sameObject compares everything an Object holds.
func sameObject(a, b *Object) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.UID == b.UID &&
		a.ResourceVersion == b.ResourceVersion && maps.Equal(a.Labels, b.Labels) && bytes.Equal(a.JSON, b.JSON)
}

// sameContent reports how two snapshots differ, or "".
func sameContent(a, b *Snapshot) string {
	var as, bs []*Object
	a.Ascend("", "", "", func(o *Object) bool { as = append(as, o); return true })
	b.Ascend("", "", "", func(o *Object) bool { bs = append(bs, o); return true })
	if len(as) != len(bs) {
		return fmt.Sprintf("%d objects, want %d", len(as), len(bs))
	}
	for i := range as {
		if !sameObject(as[i], bs[i]) {
			return fmt.Sprintf("object %d: %v, want %v", i, as[i], bs[i])
		}
	}
	return ""
}

func reopen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Logger: zaptest.NewLogger(t)})
	mustNil(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPersistenceRoundTrip(t *testing.T) {
	s, path := openStore(t, Options{})
	keys := []Key{
		testKey,
		{Target: "other", Group: "example.com", Version: "v1", Resource: "things"},
		{Target: "odd/name %", Group: "", Version: "v1", Resource: "x"},
	}
	want := map[Key]*Snapshot{}
	for i, k := range keys {
		c := s.Cache(k)
		mustNil(t, c.SetClusterUID(fmt.Sprint("cluster-", i)))
		var list []*Object
		for j := range 20 + i {
			list = append(list, obj(t, fmt.Sprint("ns", j%3), fmt.Sprint("o", j), fmt.Sprint("uid", j), uint64(j+1),
				map[string]string{"app": "x", "n": fmt.Sprint(j)}, j*10))
		}
		list = append(list, obj(t, "", "cluster-scoped", "u", 50, nil, 0))
		mustNil(t, c.Replace(list, 100))
		mustNil(t, c.Update(obj(t, "ns0", "o0", "uid0", 101, nil, 5)))
		mustNil(t, c.Delete(obj(t, "ns1", "o1", "uid1", 102, nil, 0)))
		c.Bookmark(110 + uint64(i))
		want[k] = c.Snapshot()
	}
	empty := s.Cache(Key{Target: "never", Resource: "written"})
	_ = empty
	mustNil(t, s.Close())

	s2 := reopen(t, path)
	if got := s2.Caches(); !slices.Equal(got, []Key{keys[2], keys[1], keys[0]}) {
		t.Errorf("Caches() = %v", got)
	}
	for i, k := range keys {
		c := s2.Cache(k)
		if !c.Synced() || c.ResourceVersion() != 110+uint64(i) || c.ClusterUID() != fmt.Sprint("cluster-", i) {
			t.Errorf("%v: synced %v, rv %d, uid %q", k, c.Synced(), c.ResourceVersion(), c.ClusterUID())
		}
		if d := sameContent(c.Snapshot(), want[k]); d != "" {
			t.Errorf("%v: %s", k, d)
		}
		// The buffer starts at the loaded state.
		if _, _, err := c.Watch(c.ResourceVersion(), false); err != nil {
			t.Errorf("Watch from the loaded resourceVersion: %v", err)
		}
		if _, _, err := c.Watch(c.ResourceVersion()-1, false); !errors.Is(err, ErrExpired) {
			t.Errorf("Watch from before the loaded resourceVersion = %v, want ErrExpired", err)
		}
	}
}

// TestReopenAfterBatchedWritesIsConsistent changes several caches quickly
// while the flusher commits in the background, copies the live file at
// random moments (what a crash would leave), and checks that every copy
// holds, for every cache, exactly the state at the resourceVersion it
// records; and that Close leaves the final state.
func TestReopenAfterBatchedWritesIsConsistent(t *testing.T) {
	s, path := openStore(t, Options{FlushInterval: time.Millisecond, EventBufferSize: 100000})
	keys := []Key{{Target: "a", Resource: "r"}, {Target: "b", Resource: "r"}}
	var wg sync.WaitGroup
	for i, k := range keys {
		c := s.Cache(k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 9))
			var list []*Object
			for j := range 100 {
				list = append(list, obj(t, "ns", fmt.Sprint(j), fmt.Sprint("u", j), uint64(j+1), nil, 100))
			}
			if err := c.Replace(list, 100); err != nil {
				t.Error(err)
				return
			}
			for rv := uint64(101); rv <= 3000; rv++ {
				name := fmt.Sprint(r.IntN(150))
				var err error
				switch {
				case r.IntN(20) == 0:
					c.Bookmark(rv)
				case r.IntN(4) == 0:
					err = c.Delete(obj(t, "ns", name, "u"+name, rv, nil, 0))
				default:
					err = c.Update(obj(t, "ns", name, "u"+name, rv, map[string]string{"rv": fmt.Sprint(rv)}, r.IntN(200)))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var copies []string
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		case <-time.After(3 * time.Millisecond):
			cp := filepath.Join(t.TempDir(), fmt.Sprint("copy", i))
			mustNil(t, s.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(cp, 0o600) }))
			copies = append(copies, cp)
			continue
		}
		break
	}
	if len(copies) < 3 {
		t.Logf("only %d copies", len(copies))
	}
	checked := 0
	for _, cp := range copies {
		s2 := reopen(t, cp)
		for _, k := range s2.Caches() {
			got := s2.Cache(k)
			want, err := s.Cache(k).SnapshotAt(got.ResourceVersion())
			if err != nil {
				// The copy holds the cache's creation (rv 0, unsynced) or
				// a state inside the first relist's gap: neither can be.
				if got.ResourceVersion() != 0 || got.Synced() {
					t.Errorf("%s: %v: rv %d", cp, k, got.ResourceVersion())
				}
				continue
			}
			if d := sameContent(got.Snapshot(), want); d != "" {
				t.Errorf("%s: %v at %d: %s", cp, k, got.ResourceVersion(), d)
			}
			checked++
		}
		mustNil(t, s2.Close())
	}
	t.Logf("%d copies, %d cache states checked", len(copies), checked)

	final := map[Key]*Snapshot{}
	for _, k := range keys {
		final[k] = s.Cache(k).Snapshot()
	}
	mustNil(t, s.Close())
	s3 := reopen(t, path)
	for _, k := range keys {
		c := s3.Cache(k)
		if c.ResourceVersion() != final[k].ResourceVersion() {
			t.Errorf("%v: rv %d, want %d", k, c.ResourceVersion(), final[k].ResourceVersion())
		}
		if d := sameContent(c.Snapshot(), final[k]); d != "" {
			t.Errorf("%v: %s", k, d)
		}
	}
}

func TestResetAndRemoveArePersisted(t *testing.T) {
	s, path := openStore(t, Options{})
	a, b := s.Cache(testKey), s.Cache(Key{Target: "b"})
	mustNil(t, a.SetClusterUID("one"))
	mustNil(t, a.Replace([]*Object{o(t, "ns", "x", 1)}, 10))
	mustNil(t, b.Replace([]*Object{o(t, "ns", "y", 1)}, 10))
	mustNil(t, s.Flush())
	mustNil(t, a.Reset("two"))
	s.Remove(Key{Target: "b"})
	if err := b.Add(o(t, "ns", "z", 11)); !errors.Is(err, ErrClosed) {
		t.Errorf("Add to a removed cache = %v", err)
	}
	mustNil(t, s.Close())

	s2 := reopen(t, path)
	if got := s2.Caches(); !slices.Equal(got, []Key{testKey}) {
		t.Errorf("Caches() = %v", got)
	}
	c := s2.Cache(testKey)
	if c.Synced() || c.ResourceVersion() != 0 || c.ClusterUID() != "two" || c.Snapshot().Len() != 0 {
		t.Errorf("reset cache loaded as synced %v, rv %d, uid %q, len %d", c.Synced(), c.ResourceVersion(), c.ClusterUID(), c.Snapshot().Len())
	}
	// Relisted after the reset, it is synced again after a reopen.
	mustNil(t, c.Replace([]*Object{o(t, "ns", "new", 3)}, 4))
	mustNil(t, s2.Close())
	c = reopen(t, path).Cache(testKey)
	if !c.Synced() || c.ResourceVersion() != 4 || keys(c.Snapshot(), "")[0] != "ns/new" {
		t.Errorf("synced %v, rv %d, %v", c.Synced(), c.ResourceVersion(), keys(c.Snapshot(), ""))
	}
}

func TestRemoveThenRecreate(t *testing.T) {
	s, path := openStore(t, Options{})
	k := Key{Target: "t"}
	mustNil(t, s.Cache(k).Replace([]*Object{o(t, "ns", "old", 1)}, 10))
	mustNil(t, s.Flush())
	s.Remove(k)
	c := s.Cache(k)
	if c.Snapshot().Len() != 0 || c.Synced() {
		t.Error("a recreated cache is not empty")
	}
	mustNil(t, c.Replace([]*Object{o(t, "ns", "new", 2)}, 5))
	mustNil(t, s.Close())
	if got := keys(reopen(t, path).Cache(k).Snapshot(), ""); !slices.Equal(got, []string{"ns/new"}) {
		t.Errorf("content = %v", got)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("another store holds the file", func(t *testing.T) {
		_, path := openStore(t, Options{})
		start := time.Now()
		if _, err := Open(path, Options{}); err == nil {
			t.Fatal("a second Open succeeded")
		}
		if time.Since(start) > 5*time.Second {
			t.Error("Open waited too long")
		}
	})
	t.Run("another format", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		db, err := bolt.Open(path, 0o600, nil)
		mustNil(t, err)
		mustNil(t, db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(formatBucket)
			if err != nil {
				return err
			}
			return b.Put(formatKey, []byte("99"))
		}))
		mustNil(t, db.Close())
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "format") {
			t.Errorf("Open = %v, want a format error", err)
		}
	})
	t.Run("not a bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		mustNil(t, os.WriteFile(path, bytes.Repeat([]byte("x"), 8192), 0o600))
		if _, err := Open(path, Options{}); err == nil {
			t.Error("Open of garbage succeeded")
		}
	})
}

func TestUnreadableCacheStartsEmpty(t *testing.T) {
	s, path := openStore(t, Options{})
	good, bad := Key{Target: "good"}, Key{Target: "bad"}
	mustNil(t, s.Cache(good).Replace([]*Object{o(t, "ns", "a", 1)}, 5))
	mustNil(t, s.Cache(bad).Replace([]*Object{o(t, "ns", "a", 1)}, 5))
	mustNil(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	mustNil(t, err)
	mustNil(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bad.String())).Bucket(objectsBucket).Put([]byte("ns/a"), []byte{9, 9, 9})
	}))
	mustNil(t, db.Close())

	s2 := reopen(t, path)
	if c := s2.Cache(good); !c.Synced() || c.Snapshot().Len() != 1 {
		t.Error("the good cache was not loaded")
	}
	if c := s2.Cache(bad); c.Synced() || c.Snapshot().Len() != 0 || c.ResourceVersion() != 0 {
		t.Error("the bad cache was not emptied")
	}
	mustNil(t, s2.Close())
	// The next flush rewrote it: it loads cleanly (empty, unsynced).
	if c := reopen(t, path).Cache(bad); c.Synced() || c.Snapshot().Len() != 0 {
		t.Error("the bad cache came back")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []*Object{
		{Namespace: "ns", Name: "a", UID: "u", ResourceVersion: 1 << 60, Labels: map[string]string{"a": "b", "": "", "long": strings.Repeat("v", 300)}, JSON: []byte(`{"x":1}`)},
		{Name: "cluster", JSON: []byte(`{}`)},
		{Namespace: "ns", Name: "empty-json"},
	}
	for _, want := range tests {
		rec := appendRecord(nil, want)
		if len(rec) > recordSize(want) {
			t.Errorf("recordSize(%v) = %d < %d", want, recordSize(want), len(rec))
		}
		var in interner
		got, err := decodeRecord([]byte(want.Key()), rec, &in)
		mustNil(t, err)
		if !sameObject(got, want) {
			t.Errorf("round trip: %+v, want %+v", got, want)
		}
		// Every truncation is an error, never a panic.
		for n := 0; n < len(rec)-len(want.JSON); n++ {
			if _, err := decodeRecord([]byte(want.Key()), rec[:n], &in); err == nil {
				t.Errorf("record truncated to %d bytes decoded", n)
			}
		}
	}
	if _, err := decodeRecord([]byte("no-slash"), appendRecord(nil, tests[0]), &interner{}); err == nil {
		t.Error("a key without '/' decoded")
	}
}

func TestKeyString(t *testing.T) {
	for _, k := range []Key{testKey, {}, {Target: "a/b", Group: "%2F", Version: "v 1", Resource: "é", Selection: "s/1"}} {
		got, err := parseKey(k.String())
		if err != nil || got != k {
			t.Errorf("parseKey(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	if testKey.String() != "target/example.com/v1/things/" {
		t.Errorf("String() = %q", testKey.String())
	}
	// A bucket of a file from before selections: no Selection, which no
	// mirror asks for.
	if k, err := parseKey("target/example.com/v1/things"); err != nil || k != testKey {
		t.Errorf("parseKey of four parts = %v, %v; want %v", k, err, testKey)
	}
	for _, bad := range []string{"a/b/c", "a/b/c/d/e/f", "a/%zz/c/d"} {
		if _, err := parseKey(bad); err == nil {
			t.Errorf("parseKey(%q) succeeded", bad)
		}
	}
}

// TestFailedFlushKeepsTheChanges checks that changes a failed commit did not
// write are merged back under the ones made since.
func TestFailedFlushKeepsTheChanges(t *testing.T) {
	s, _ := openStore(t, Options{FlushInterval: time.Hour})
	c := s.Cache(testKey)
	mustNil(t, c.Replace([]*Object{o(t, "ns", "a", 1), o(t, "ns", "b", 2)}, 10))
	taken, ok := c.take()
	if !ok || len(taken.objs) != 2 || taken.rv != 10 || !taken.synced {
		t.Fatalf("take() = %+v", taken)
	}
	mustNil(t, c.Update(o(t, "ns", "a", 11)))
	mustNil(t, c.Delete(o(t, "ns", "c", 12)))
	c.giveBack(taken)
	p := c.pend
	if p.rv != 12 || p.objs["ns/a"].ResourceVersion != 11 || p.objs["ns/b"].ResourceVersion != 2 || len(p.objs) != 2 {
		t.Errorf("merged = %+v", p)
	}

	// A Reset since supersedes what the failed flush held.
	taken, _ = c.take()
	mustNil(t, c.Reset("x"))
	c.giveBack(taken)
	if p := c.pend; !p.reset || len(p.objs) != 0 || p.uid != "x" {
		t.Errorf("after a reset: %+v", p)
	}

	// Nothing changed since: the taken changes come back as they were.
	taken, _ = c.take()
	c.giveBack(taken)
	if p := c.pend; !p.reset || !p.dirty {
		t.Errorf("given back: %+v", p)
	}
}
