package store

import (
	"cmp"
	"fmt"
	"slices"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/watch"
)

// Replace records a relist: objs is the target's complete list at
// resourceVersion rv. The cache emits exactly the difference against what
// it holds, in resourceVersion order, then sets its resourceVersion to rv
// and is Synced:
//
//   - an object it did not hold: ADDED, at the object's resourceVersion;
//   - an object whose resourceVersion changed: MODIFIED, at the object's
//     resourceVersion; if its UID changed too (deleted and created again
//     while the cache was not watching) DELETED of the old one and ADDED of
//     the new one, both at the new object's resourceVersion;
//   - an object it held that the list lacks: DELETED at rv, the last known
//     state with metadata.resourceVersion set to rv;
//   - an unchanged object (same resourceVersion and UID) is untouched: no
//     event, and the cache keeps the *Object it had.
//
// Watchers see the whole relist at once (they never observe half of it).
// The states between the cache's previous resourceVersion and rv were never
// observed, so SnapshotAt and Watch answer ErrExpired inside that gap (see
// the package documentation).
//
// rv below the cache's resourceVersion is dropped, logged and reported
// with ErrStaleResourceVersion (a list served by a lagging target cache).
// An object with a resourceVersion above rv, or two objects with one key,
// make the list invalid: an error, and nothing changes.
func (c *Cache) Replace(objs []*Object, resourceVersion uint64) error {
	rv := resourceVersion
	sorted := make([]*Object, len(objs))
	copy(sorted, objs)
	for _, o := range sorted {
		if err := o.validate(); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if o.ResourceVersion > rv {
			return fmt.Errorf("replace: object %s has a resourceVersion above the list's %d", o, rv)
		}
	}
	slices.SortFunc(sorted, func(a, b *Object) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if compareKeys(sorted[i-1].Namespace, sorted[i-1].Name, sorted[i].Namespace, sorted[i].Name) == 0 {
			return fmt.Errorf("replace: object %s is listed twice", sorted[i].Key())
		}
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := c.head.Load()
	if h.closed {
		return ErrClosed
	}
	from := h.snap.rv
	if rv < from {
		return c.stale("replace", "", rv, from)
	}

	// Merge the sorted list with the cache's content, in the same order.
	var changes, deletions []Event
	inconsistent := 0
	at := func(o *Object) uint64 {
		// A change the cache should already have held (it is not newer
		// than the cache) is reported at the list's resourceVersion, so
		// that events stay in order.
		if o.ResourceVersion <= from && from > 0 {
			inconsistent++
			return rv
		}
		return o.ResourceVersion
	}
	i := 0
	c.tree.Ascend(func(cur *Object) bool {
		for ; i < len(sorted); i++ {
			o := sorted[i]
			d := compareKeys(o.Namespace, o.Name, cur.Namespace, cur.Name)
			if d > 0 {
				break
			}
			if d < 0 {
				changes = append(changes, Event{Type: watch.Added, Object: o, ResourceVersion: at(o)})
				continue
			}
			i++
			switch {
			case o == cur || (o.ResourceVersion == cur.ResourceVersion && o.UID == cur.UID):
			case o.UID != cur.UID:
				erv := at(o)
				tomb, _ := cur.WithResourceVersion(erv)
				changes = append(changes,
					Event{Type: watch.Deleted, Object: tomb, PrevObject: cur, ResourceVersion: erv},
					Event{Type: watch.Added, Object: o, ResourceVersion: erv})
			default:
				changes = append(changes, Event{Type: watch.Modified, Object: o, PrevObject: cur, ResourceVersion: at(o)})
			}
			return true
		}
		tomb, ok := cur.WithResourceVersion(rv)
		if !ok {
			c.log.Debug("deleted object has no metadata.resourceVersion to set", zap.Stringer("object", cur))
		}
		deletions = append(deletions, Event{Type: watch.Deleted, Object: tomb, PrevObject: cur, ResourceVersion: rv})
		return true
	})
	for ; i < len(sorted); i++ {
		changes = append(changes, Event{Type: watch.Added, Object: sorted[i], ResourceVersion: at(sorted[i])})
	}
	if inconsistent > 0 {
		c.log.Warn("relist changed objects the cache already held at their resourceVersion; reported at the list's resourceVersion",
			zap.Int("objects", inconsistent), zap.Uint64("cacheResourceVersion", from), zap.Uint64("listResourceVersion", rv))
	}
	slices.SortStableFunc(changes, func(a, b Event) int { return cmp.Compare(a.ResourceVersion, b.ResourceVersion) })
	evs := append(changes, deletions...)

	for _, ev := range evs {
		if ev.Type == watch.Deleted {
			c.tree.Delete(ev.PrevObject)
		} else {
			c.tree.ReplaceOrInsert(ev.Object)
		}
	}
	c.publish(h, evs, rv, func(nh *head) {
		nh.synced = true
		if rv > from+1 {
			nh.gaps = append(slices.Clip(nh.gaps), gap{from: from, to: rv})
		}
	})
	c.record(evs, rv)
	c.log.Debug("relisted", zap.Uint64("resourceVersion", rv), zap.Int("objects", len(sorted)),
		zap.Int("changes", len(changes)), zap.Int("deletions", len(deletions)))
	return nil
}
