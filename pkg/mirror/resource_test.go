package mirror

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/crproxy/crproxy/pkg/store"
)

// TestWaitConsistentSettles: a consistent read waits the settle window
// when the target is ahead of the mirror with no event of the selection to
// come; a later read that probes no newer resourceVersion does not wait
// again, one that probes a newer one does.
func TestWaitConsistentSettles(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := st.Cache(store.Key{Target: "p/t", Group: "example.com", Version: "v1", Resource: "things"})
	c.Bookmark(10)
	targetRV := uint64(15) // others wrote at the target: it is ahead
	r := &Resource{Cache: c}
	r.probe.probe = func(context.Context) (uint64, error) { return targetRV, nil }
	read := func() time.Duration {
		start := time.Now()
		if err := r.WaitConsistent(context.Background()); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if took := read(); took < settleWindow {
		t.Errorf("first read took %s; want the settle window (%s)", took, settleWindow)
	}
	if took := read(); took >= settleWindow/2 {
		t.Errorf("second read at the same target resourceVersion took %s; want no wait", took)
	}
	targetRV = 16
	if took := read(); took < settleWindow {
		t.Errorf("read after a newer write at the target took %s; want the settle window", took)
	}
	// The mirror went back in time (resynced from a rebuilt target): what
	// settled before says nothing any more.
	if err := c.Reset("new-uid"); err != nil {
		t.Fatal(err)
	}
	c.Bookmark(5)
	targetRV = 16
	if took := read(); took < settleWindow {
		t.Errorf("read after the mirror was reset took %s; want the settle window", took)
	}
}
