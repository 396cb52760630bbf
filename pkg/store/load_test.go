package store

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"testing"

	"github.com/crproxy/crproxy/internal/localcluster"
)

// TestLoadHandsMappedPagesBack: loading a store leaves at most a few MiB of
// its file resident (the pages bbolt mapped in are handed back as the load
// goes), not the whole file next to the heap built from it.
func TestLoadHandsMappedPagesBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("madvise is used on Linux only")
	}
	s, path := openStore(t, Options{})
	c := s.Cache(testKey)
	var list []*Object
	for i := range 40000 {
		list = append(list, obj(t, "default", fmt.Sprintf("o-%05d", i), fmt.Sprint("uid-", i), uint64(i+1), map[string]string{"app": "x"}, 1000))
	}
	mustNil(t, c.Replace(list, 40000))
	mustNil(t, s.Close())
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before, err := localcluster.ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if got := reopened.Cache(testKey).Snapshot().Len(); got != 40000 {
		t.Fatalf("reopened with %d objects, want 40000", got)
	}
	after, err := localcluster.ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	grew := after.FileRSSKiB - before.FileRSSKiB
	t.Logf("file %d MiB; mapped file pages resident after the load grew by %d KiB", info.Size()>>20, grew)
	if limit := int(info.Size()>>10) / 4; grew > limit {
		t.Errorf("the load left %d KiB of the %d KiB file resident; want under %d KiB", grew, info.Size()>>10, limit)
	}
}

// TestLoadSharesEqualLabelSets: objects loaded with equal labels share one
// map (owned mode: every object has the same owner labels); different
// labels stay apart.
func TestLoadSharesEqualLabelSets(t *testing.T) {
	s, path := openStore(t, Options{})
	owner := map[string]string{"vcluster.com/owner-vcluster": "c", "vcluster.com/owner-project": "p"}
	mustNil(t, s.Cache(testKey).Replace([]*Object{
		obj(t, "ns", "a", "ua", 1, owner, 10),
		obj(t, "ns", "b", "ub", 2, map[string]string{"vcluster.com/owner-project": "p", "vcluster.com/owner-vcluster": "c"}, 10),
		obj(t, "ns", "c", "uc", 3, map[string]string{"vcluster.com/owner-vcluster": "other"}, 10),
	}, 3))
	mustNil(t, s.Close())
	snap := reopen(t, path).Cache(testKey).Snapshot()
	get := func(name string) map[string]string {
		o, ok := snap.Get("ns", name)
		if !ok {
			t.Fatalf("%s not loaded", name)
		}
		return o.Labels
	}
	a, b, c := get("a"), get("b"), get("c")
	if reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
		t.Error("equal label sets were loaded as two maps")
	}
	if !maps.Equal(a, owner) || c["vcluster.com/owner-vcluster"] != "other" || len(c) != 1 {
		t.Errorf("labels loaded wrong: a %v, c %v", a, c)
	}
}
