package store

import (
	"fmt"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/watch"
)

// Add records an object the target reported as added. An Add of an object
// the cache already holds is recorded as a modification (watchers get the
// event type that matches what they have seen), so Add and Update are
// interchangeable for the writer.
//
// Like every change, its resourceVersion must be above the cache's: a
// change at or below it is dropped, logged, and reported with
// ErrStaleResourceVersion.
func (c *Cache) Add(obj *Object) error { return c.change("add", obj, false) }

// Update records a modification; see Add.
func (c *Cache) Update(obj *Object) error { return c.change("update", obj, false) }

// Delete records a deletion. obj is the deleted object as the target
// reported it, carrying the deletion's resourceVersion; the event's
// PrevObject is the state the cache held. Deleting an object the cache does
// not hold emits no event but still moves the resourceVersion on.
func (c *Cache) Delete(obj *Object) error { return c.change("delete", obj, true) }

func (c *Cache) change(what string, obj *Object, del bool) error {
	if err := obj.validate(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := c.head.Load()
	if h.closed {
		return ErrClosed
	}
	rv := obj.ResourceVersion
	if rv <= h.snap.rv {
		return c.stale(what, obj.String(), rv, h.snap.rv)
	}
	var evs []Event
	if del {
		if prev, ok := c.tree.Delete(obj); ok {
			evs = []Event{{Type: watch.Deleted, Object: obj, PrevObject: prev, ResourceVersion: rv}}
		}
	} else {
		ev := Event{Type: watch.Added, Object: obj, ResourceVersion: rv}
		if prev, ok := c.tree.ReplaceOrInsert(obj); ok {
			ev.Type, ev.PrevObject = watch.Modified, prev
		}
		evs = []Event{ev}
	}
	c.publish(h, evs, rv, nil)
	c.record(evs, rv)
	return nil
}

// Bookmark moves the cache's resourceVersion on without a change: the
// target reported that nothing happened up to rv. Watchers and
// WaitForResourceVersion wake. A bookmark below the cache's resourceVersion
// is dropped and logged.
func (c *Cache) Bookmark(rv uint64) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := c.head.Load()
	if h.closed || rv == h.snap.rv {
		return
	}
	if rv < h.snap.rv {
		_ = c.stale("bookmark", "", rv, h.snap.rv)
		return
	}
	c.publish(h, nil, rv, nil)
	c.record(nil, rv)
}

// SetClusterUID records the identity of the target (the UID of its
// kube-system namespace), persisted beside the data. To change the identity
// of a cache that holds data, use Reset.
func (c *Cache) SetClusterUID(uid string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.head.Load().closed {
		return ErrClosed
	}
	c.clusterUID.Store(&uid)
	c.pmu.Lock()
	h := c.head.Load()
	c.pend.dirty = true
	c.pend.uid = uid
	c.pend.rv = h.snap.rv
	c.pend.synced = h.synced
	c.pmu.Unlock()
	c.store.noteDirty(1)
	return nil
}

// Reset empties the cache because the target's identity changed: the
// objects, the event buffer and the snapshots are dropped, the
// resourceVersion becomes 0, the cache is not Synced until the next
// Replace, and clusterUID is recorded. Every watcher's Next returns
// ErrExpired, so clients relist from scratch rather than resume from a
// resourceVersion of another cluster. Reset is the only change that moves
// the resourceVersion back. The file forgets the old data at the next
// flush.
func (c *Cache) Reset(clusterUID string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := c.head.Load()
	if h.closed {
		return ErrClosed
	}
	c.tree = newObjectTree()
	snap := c.tree.Clone()
	c.clusterUID.Store(&clusterUID)
	c.head.Store(&head{
		epoch: h.epoch + 1,
		ring:  newRing(c.size),
		first: h.next,
		next:  h.next,
		base:  snap,
		snap:  &Snapshot{tree: snap},
		wake:  make(chan struct{}),
	})
	close(h.wake)
	c.forgetAll()
	c.pmu.Lock()
	c.pend = pending{reset: true, dirty: true, uid: clusterUID}
	c.pmu.Unlock()
	c.store.noteDirty(1)
	c.log.Info("cache reset: target identity changed", zap.String("clusterUID", clusterUID), zap.Uint64("droppedResourceVersion", h.snap.rv))
	return nil
}

// close ends the cache for good (Store.Close, Store.Remove): writers get
// ErrClosed, watchers' Next returns ErrClosed, reads keep answering from
// the last state.
func (c *Cache) close() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := c.head.Load()
	if h.closed {
		return
	}
	nh := *h
	nh.closed = true
	nh.wake = make(chan struct{})
	c.head.Store(&nh)
	close(h.wake)
	c.forgetAll()
}

// stale logs and returns the error for a change that does not move the
// resourceVersion forward.
func (c *Cache) stale(what, obj string, rv, cur uint64) error {
	c.log.Warn("dropped a change that does not move the resourceVersion forward",
		zap.String("change", what), zap.String("object", obj),
		zap.Uint64("resourceVersion", rv), zap.Uint64("cacheResourceVersion", cur))
	return fmt.Errorf("%w: %s %s at resourceVersion %d, the cache is at %d", ErrStaleResourceVersion, what, obj, rv, cur)
}

// publish appends evs (already applied to c.tree) to the buffer and
// publishes the state at rv as a new head; edit, if not nil, adjusts the
// new head before it is published. Then every waiter wakes. The caller holds wmu.
func (c *Cache) publish(h *head, evs []Event, rv uint64, edit func(*head)) {
	nh := *h
	nh.wake = make(chan struct{})
	tree := h.snap.tree
	if len(evs) > 0 {
		tree = c.tree.Clone()
	}
	nh.snap = &Snapshot{tree: tree, rv: rv}
	size := uint64(len(h.ring.slots))
	// Events a single batch pushes out of the buffer at once are never
	// stored: only their resourceVersions matter.
	skip := 0
	if len(evs) > int(size) {
		skip = len(evs) - int(size)
	}
	for i, ev := range evs {
		if i < skip {
			nh.next++
			nh.first, nh.startRV, nh.base, nh.bytes = nh.next, ev.ResourceVersion, nil, 0
			continue
		}
		e := &entry{seq: nh.next, ev: ev}
		for nh.next > nh.first && (nh.next-nh.first == size || nh.bytes+e.size() > c.maxBytes) {
			old := nh.ring.load(nh.first)
			nh.first, nh.startRV, nh.base = nh.first+1, old.ev.ResourceVersion, old.tree
			nh.bytes -= old.size()
		}
		nh.bytes += e.size()
		if i == len(evs)-1 {
			e.tree = tree
		}
		nh.ring.store(e)
		nh.next++
	}
	if edit != nil {
		edit(&nh)
	}
	if len(nh.gaps) > 0 && nh.gaps[0].to <= nh.startRV {
		kept := make([]gap, 0, len(nh.gaps))
		for _, g := range nh.gaps {
			if g.to > nh.startRV {
				kept = append(kept, g)
			}
		}
		nh.gaps = kept
	}
	c.head.Store(&nh)
	close(h.wake)
}

// record adds evs to the changes the next flush writes. The caller holds
// wmu.
func (c *Cache) record(evs []Event, rv uint64) {
	c.pmu.Lock()
	if c.pend.objs == nil && len(evs) > 0 {
		c.pend.objs = make(map[string]*Object, len(evs))
	}
	for _, ev := range evs {
		if ev.Type == watch.Deleted {
			c.pend.objs[ev.PrevObject.Key()] = nil
		} else {
			c.pend.objs[ev.Object.Key()] = ev.Object
		}
	}
	c.pend.dirty = true
	c.pend.rv = rv
	c.pend.uid = c.ClusterUID()
	c.pend.synced = c.head.Load().synced
	c.pmu.Unlock()
	c.store.noteDirty(max(len(evs), 1))
}
