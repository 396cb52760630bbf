package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crproxy/crproxy/pkg/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)
	s, err := store.Open(filepath.Join(dir, "mirror.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	c := s.Cache(store.Key{Target: "target", Group: "example.com", Version: "v1", Resource: "things"})

	mustObject := func(json string) *store.Object {
		o, err := store.NewObject([]byte(json))
		if err != nil {
			panic(err)
		}
		return o
	}

	// The writer: a relist, then watch events.
	_ = c.Replace([]*store.Object{
		mustObject(`{"metadata":{"namespace":"a","name":"one","uid":"u1","resourceVersion":"10"}}`),
	}, 20)
	w, initial, _ := c.Watch(0, true) // the state now, and every event after it
	defer w.Stop()
	_ = c.Add(mustObject(`{"metadata":{"namespace":"a","name":"two","uid":"u2","resourceVersion":"21"}}`))
	c.Bookmark(25)

	// A reader: a list from the initial snapshot, then the events.
	initial.Ascend("a", "", "", func(o *store.Object) bool {
		fmt.Printf("listed %s at %d\n", o.Key(), initial.ResourceVersion())
		return true
	})
	ev, _ := w.Next(context.Background())
	fmt.Println(ev.Type, ev.Object.Key(), ev.ResourceVersion)
	fmt.Println("bookmark at", w.ResourceVersion())

	// A continue token or resourceVersionMatch=Exact: the state at 20.
	at20, _ := c.SnapshotAt(20)
	fmt.Println("objects at 20:", at20.Len())
	// Output:
	// listed a/one at 20
	// ADDED a/two 21
	// bookmark at 25
	// objects at 20: 1
}
