package store

import "k8s.io/apimachinery/pkg/watch"

// Event is one change of a cache, as watchers receive it. Events are kept in
// resourceVersion order; several events share one resourceVersion only when a
// relist (Replace) reports deletions, which all happen at the list's
// resourceVersion.
type Event struct {
	// Type is watch.Added, watch.Modified or watch.Deleted. Bookmarks are
	// not events of the buffer; Watcher.NextOrBookmark synthesizes them.
	Type watch.EventType
	// Object is the new state. For Deleted it is the last state as the
	// target reported it, with the deletion's resourceVersion (for a
	// deletion found by a relist, the store sets metadata.resourceVersion of
	// the last known state to the list's resourceVersion).
	Object *Object
	// PrevObject is the state before the change (Modified, Deleted); nil
	// for Added, and for a Deleted event of an object the cache never held.
	PrevObject *Object
	// ResourceVersion is the resourceVersion of the change. It equals
	// Object.ResourceVersion, except for a change a relist found that the
	// cache should already have held (an inconsistent target), which is
	// reported at the list's resourceVersion to keep events in order.
	ResourceVersion uint64
}
