package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"k8s.io/apimachinery/pkg/watch"
)

// obj builds an Object through NewObject, as the mirror would. pad adds a
// spec of that many bytes.
func obj(tb testing.TB, ns, name, uid string, rv uint64, labels map[string]string, pad int) *Object {
	tb.Helper()
	o, err := NewObject(objJSON(ns, name, uid, rv, labels, pad))
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

func objJSON(ns, name, uid string, rv uint64, labels map[string]string, pad int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":%q`, name)
	if ns != "" {
		fmt.Fprintf(&b, `,"namespace":%q`, ns)
	}
	fmt.Fprintf(&b, `,"uid":%q,"resourceVersion":"%d"`, uid, rv)
	if len(labels) > 0 {
		b.WriteString(`,"labels":{`)
		first := true
		for k, v := range labels {
			if !first {
				b.WriteByte(',')
			}
			first = false
			fmt.Fprintf(&b, "%q:%q", k, v)
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(&b, `},"spec":{"data":%q}}`, strings.Repeat("x", pad))
	return []byte(b.String())
}

// o is the short form: namespace, name, resourceVersion; uid derived from
// the name.
func o(tb testing.TB, ns, name string, rv uint64) *Object {
	return obj(tb, ns, name, "uid-"+ns+"-"+name, rv, nil, 0)
}

var testKey = Key{Target: "target", Group: "example.com", Version: "v1", Resource: "things"}

// openStore opens a store in a temporary folder, closed when the test ends.
func openStore(tb testing.TB, opts Options) (*Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "store.db")
	if opts.Logger == nil {
		if t, ok := tb.(*testing.T); ok {
			opts.Logger = zaptest.NewLogger(t)
		}
	}
	s, err := Open(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, path
}

func newTestCache(tb testing.TB, opts Options) *Cache {
	s, _ := openStore(tb, opts)
	return s.Cache(testKey)
}

// ev is an expected event, compared by type, key and resourceVersion.
type ev struct {
	typ watch.EventType
	key string
	rv  uint64
}

func (e ev) String() string { return fmt.Sprintf("%s %s@%d", e.typ, e.key, e.rv) }

func short(e Event) ev {
	k := ""
	if e.Object != nil {
		k = e.Object.Key()
	}
	return ev{e.Type, k, e.ResourceVersion}
}

// drain reads n events from w, failing after a second without one.
func drain(tb testing.TB, w *Watcher, n int) []ev {
	tb.Helper()
	var out []ev
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e, err := w.Next(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("after %d events %v: %v", len(out), out, err)
		}
		out = append(out, short(e))
	}
	return out
}

// pendingNow reports whether w has an event ready now, without taking it.
func pendingNow(w *Watcher) bool {
	return w.cursor < w.c.head.Load().next
}

func keys(s *Snapshot, namespace string) []string {
	var out []string
	s.Ascend(namespace, "", "", func(o *Object) bool {
		out = append(out, o.Key())
		return true
	})
	return out
}

func mustNil(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
