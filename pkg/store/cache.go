package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// Cache is the mirror of one resource of one target (one Key): the objects,
// the event buffer, the snapshots of the window the buffer covers, and the
// changes not yet written to the bbolt file.
//
// It has exactly one writer, the reflector of its resource (Add, Update,
// Delete, Replace, Bookmark; SetClusterUID and Reset may come from another
// goroutine, they are serialized with the writer), and any number of
// concurrent readers. Readers never take a lock the writer holds for long
// and never wait for bbolt: they read the published head with one atomic
// load.
type Cache struct {
	key   Key
	store *Store
	log   *zap.Logger
	size  int // event buffer size
	// maxBytes bounds the bytes of the buffered events (EventBufferBytes).
	maxBytes int64

	// head is the published state; only the writer stores it.
	head       atomic.Pointer[head]
	clusterUID atomic.Pointer[string]

	// wmu serializes the writer methods; tree is the writer's own copy of
	// the index, which every published snapshot shares copy-on-write.
	wmu  sync.Mutex
	tree *objectTree

	// pmu guards pend, the changes the next flush writes.
	pmu  sync.Mutex
	pend pending

	// watchersMu guards watchers, which only counts and closes them: the
	// event path never touches it.
	watchersMu sync.Mutex
	watchers   map[*Watcher]struct{}
}

// newCache returns a cache holding tree at rv. tree becomes the writer's.
func newCache(s *Store, key Key, tree *objectTree, rv uint64, uid string, synced bool) *Cache {
	c := &Cache{
		key:      key,
		store:    s,
		log:      s.log.With(zap.Stringer("cache", key)),
		size:     s.opts.EventBufferSize,
		maxBytes: s.opts.EventBufferBytes,
		tree:     tree,
		watchers: map[*Watcher]struct{}{},
	}
	c.clusterUID.Store(&uid)
	snap := tree.Clone()
	c.head.Store(&head{
		ring:    newRing(c.size),
		startRV: rv,
		base:    snap,
		snap:    &Snapshot{tree: snap, rv: rv},
		synced:  synced,
		wake:    make(chan struct{}),
	})
	return c
}

// Key returns the cache's key.
func (c *Cache) Key() Key { return c.key }

// ResourceVersion returns the resourceVersion of the newest state the cache
// holds (0 for a cache that never synced, or was Reset).
func (c *Cache) ResourceVersion() uint64 { return c.head.Load().snap.rv }

// Synced reports whether the cache holds a complete state: it has had a
// Replace since it was created or Reset, or was loaded from the file.
func (c *Cache) Synced() bool { return c.head.Load().synced }

// ClusterUID returns the identity of the target the cache mirrors, as last
// set by SetClusterUID or Reset ("" when never set).
func (c *Cache) ClusterUID() string { return *c.clusterUID.Load() }

// Get returns the object namespace/name and the resourceVersion of the state
// it was read from.
func (c *Cache) Get(namespace, name string) (*Object, uint64, bool) {
	s := c.head.Load().snap
	o, ok := s.Get(namespace, name)
	return o, s.rv, ok
}

// Snapshot returns the current state. It is O(1) and never blocks.
func (c *Cache) Snapshot() *Snapshot { return c.head.Load().snap }

// SnapshotAt returns the state exactly at rv, for resourceVersionMatch=Exact
// and continue tokens. Every state in the window of the event buffer is kept
// (one copy-on-write snapshot per event), so rv may be any resourceVersion
// from the one before the oldest kept event up to the cache's own. Errors:
// ErrExpired when rv is older than the window, or inside a relist's gap
// (states the cache never observed); ErrResourceVersionTooLarge when rv is
// newer than the cache.
func (c *Cache) SnapshotAt(rv uint64) (*Snapshot, error) {
	return c.head.Load().snapshotAt(rv)
}

// WaitForResourceVersion blocks until the cache holds a state at rv or
// newer, and returns nil; or until ctx ends (ctx.Err()) or the store is
// closed (ErrClosed). Events and bookmarks both wake it.
func (c *Cache) WaitForResourceVersion(ctx context.Context, rv uint64) error {
	for {
		h := c.head.Load()
		switch {
		case h.snap.rv >= rv:
			return nil
		case h.closed:
			return ErrClosed
		}
		select {
		case <-h.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Watch starts a watcher that receives, in order, every event with a
// resourceVersion above fromRV; fromRV 0 means from the current state.
//
// With withState, Watch also returns the state the watch starts from, read
// atomically with the watcher's start, so that sending the snapshot's
// objects and then the watcher's events has no gap and no duplicate: what a
// watch from resourceVersion 0 or "" and sendInitialEvents=true need. (For
// fromRV > 0 that state is SnapshotAt(fromRV), with its errors.)
//
// Errors: ErrExpired when fromRV is older than the oldest event the buffer
// keeps can resume from, or inside a relist's gap (strictly between the
// resourceVersions before and after a Replace, the first sync's starting at
// 0); ErrResourceVersionTooLarge when fromRV is newer than the cache (wait
// with WaitForResourceVersion first); ErrClosed.
func (c *Cache) Watch(fromRV uint64, withState bool) (*Watcher, *Snapshot, error) {
	for {
		h := c.head.Load()
		if h.closed {
			return nil, nil, ErrClosed
		}
		var (
			cursor uint64
			snap   *Snapshot
			start  = fromRV
		)
		if fromRV == 0 {
			cursor, snap, start = h.next, h.snap, h.snap.rv
		} else {
			switch {
			case fromRV > h.snap.rv:
				return nil, nil, fmt.Errorf("%w: resourceVersion %d is newer than the cache's %d", ErrResourceVersionTooLarge, fromRV, h.snap.rv)
			case fromRV < h.startRV:
				return nil, nil, fmt.Errorf("%w: resourceVersion %d is older than the oldest the event buffer can resume from (%d)", ErrExpired, fromRV, h.startRV)
			}
			// Inside a relist's gap the events between fromRV and the
			// relist were never seen (the first sync's gap starts at 0).
			for _, g := range h.gaps {
				if g.from < fromRV && fromRV < g.to {
					return nil, nil, fmt.Errorf("%w: the events after resourceVersion %d were never observed: a relist went from %d to %d", ErrExpired, fromRV, g.from, g.to)
				}
			}
			var ok bool
			if cursor, ok = h.seek(fromRV); !ok {
				continue // the writer overwrote slots meanwhile: look again
			}
			if withState {
				var err error
				if snap, err = h.snapshotAt(fromRV); err != nil {
					return nil, nil, err
				}
			}
		}
		w := &Watcher{c: c, epoch: h.epoch, cursor: cursor, rv: start, done: make(chan struct{})}
		c.watchersMu.Lock()
		if now := c.head.Load(); now.epoch != h.epoch || now.closed {
			// Reset or closed meanwhile: what h promised is gone.
			c.watchersMu.Unlock()
			continue
		}
		c.watchers[w] = struct{}{}
		c.watchersMu.Unlock()
		if !withState {
			snap = nil
		}
		return w, snap, nil
	}
}

// WatcherCount returns the number of watchers started and not yet stopped,
// Reset or closed.
func (c *Cache) WatcherCount() int {
	c.watchersMu.Lock()
	defer c.watchersMu.Unlock()
	return len(c.watchers)
}

func (c *Cache) forget(w *Watcher) {
	c.watchersMu.Lock()
	delete(c.watchers, w)
	c.watchersMu.Unlock()
}

func (c *Cache) forgetAll() {
	c.watchersMu.Lock()
	c.watchers = map[*Watcher]struct{}{}
	c.watchersMu.Unlock()
}
