package store

import (
	"fmt"
	"sort"
	"sync/atomic"
)

// entry is one event of the buffer, immutable once stored.
type entry struct {
	seq uint64 // position in the cache's event sequence
	ev  Event
	// tree is the state right after this event, shared copy-on-write with
	// the cache. It is nil for the events of a relist but its last: the
	// states inside a relist were never observed (see gap).
	tree *objectTree
}

// ring holds the last len(slots) events; event seq lives in slot
// seq%len(slots). Slots are written by the cache's writer and read
// lock-free by watchers, which check entry.seq to notice a slot that was
// overwritten.
type ring struct {
	slots []atomic.Pointer[entry]
}

func newRing(size int) *ring { return &ring{slots: make([]atomic.Pointer[entry], size)} }

func (r *ring) load(seq uint64) *entry { return r.slots[seq%uint64(len(r.slots))].Load() }

func (r *ring) store(e *entry) { r.slots[e.seq%uint64(len(r.slots))].Store(e) }

// size is what an entry counts against Options.EventBufferBytes: its
// object's JSON (the previous state is the previous event's object, or
// part of a snapshot kept anyway).
func (e *entry) size() int64 {
	if e.ev.Object == nil {
		return 0
	}
	return int64(len(e.ev.Object.JSON))
}

// gap is the open interval of resourceVersions a relist jumped over: the
// cache held the state at from and then at to, but never the states in
// between (the relist learns objects' current state, not their history),
// so no snapshot inside the gap exists.
type gap struct{ from, to uint64 }

// head is the published state of a cache: everything a reader needs, in
// one pointer, so that a snapshot, the event sequence and the
// resourceVersion are always read consistently with each other. The writer
// builds a new head for every change and publishes it with one atomic
// store, then closes the previous head's wake channel.
type head struct {
	epoch  uint64 // incremented by Reset; a watcher of an older epoch is expired
	closed bool   // the store was closed or the cache removed

	ring        *ring
	first, next uint64 // the buffer holds the events with seq in [first, next)
	// bytes is what the objects of the buffered events weigh.
	bytes int64
	// startRV is the resourceVersion of the state right before event first:
	// the buffer has every event with a resourceVersion above it.
	startRV uint64
	// base is the state at startRV; nil when that state was not observed.
	base *objectTree
	gaps []gap
	// snap is the newest state; snap.rv is the cache's resourceVersion.
	snap *Snapshot

	synced bool
	// wake is closed when this head is replaced: by an event, a bookmark, a
	// Reset or a Close.
	wake chan struct{}
}

// seek returns the seq of the first buffered event with a resourceVersion
// above rv (h.next when there is none), and whether the buffer still held
// every slot it looked at. rv must be at least h.startRV.
func (h *head) seek(rv uint64) (uint64, bool) {
	n := int(h.next - h.first)
	stale := false
	i := sort.Search(n, func(i int) bool {
		e := h.ring.load(h.first + uint64(i))
		if e == nil || e.seq != h.first+uint64(i) {
			stale = true
			return true
		}
		return e.ev.ResourceVersion > rv
	})
	return h.first + uint64(i), !stale
}

// snapshotAt returns the state at rv, as described by Cache.SnapshotAt.
func (h *head) snapshotAt(rv uint64) (*Snapshot, error) {
	switch {
	case h.closed:
		return nil, ErrClosed
	case rv > h.snap.rv:
		return nil, fmt.Errorf("%w: resourceVersion %d is newer than the cache's %d", ErrResourceVersionTooLarge, rv, h.snap.rv)
	case rv == h.snap.rv:
		return h.snap, nil
	case rv < h.startRV:
		return nil, fmt.Errorf("%w: resourceVersion %d is older than the oldest kept (%d)", ErrExpired, rv, h.startRV)
	}
	for _, g := range h.gaps {
		if g.from < rv && rv < g.to {
			return nil, fmt.Errorf("%w: the state at resourceVersion %d was never observed: a relist went from %d to %d", ErrExpired, rv, g.from, g.to)
		}
	}
	seq, ok := h.seek(rv)
	if !ok {
		return nil, fmt.Errorf("%w: resourceVersion %d left the buffer", ErrExpired, rv)
	}
	tree := h.base
	if seq > h.first {
		e := h.ring.load(seq - 1)
		if e == nil || e.seq != seq-1 {
			return nil, fmt.Errorf("%w: resourceVersion %d left the buffer", ErrExpired, rv)
		}
		tree = e.tree
	}
	if tree == nil {
		return nil, fmt.Errorf("%w: the state at resourceVersion %d was never observed", ErrExpired, rv)
	}
	return &Snapshot{tree: tree, rv: rv}, nil
}
