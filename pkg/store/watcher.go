package store

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/watch"
)

// Watcher follows a cache's events from where Cache.Watch started it.
//
// A Watcher is a cursor into the cache's shared event buffer, not a queue:
// events are never copied per watcher, and one append wakes every watcher
// at once. The cost of an idle watcher is this struct and a channel. A
// watcher that falls so far behind that its next event left the buffer
// gets ErrExpired (the kube-apiserver closes such a watch too, and the
// client resumes or relists).
//
// Next, NextOrBookmark and ResourceVersion are for one goroutine; Stop may
// be called from any goroutine, any number of times.
type Watcher struct {
	c      *Cache
	epoch  uint64
	cursor uint64 // seq of the next event to return
	rv     uint64 // resourceVersion of the last event returned, or of the start
	// bookmarkRV is the last bookmark NextOrBookmark returned.
	bookmarkRV uint64
	err        error // sticky: once ended, a watcher stays ended
	done       chan struct{}
	stopOnce   sync.Once
}

// Next blocks until the next event and returns it. It returns ErrExpired
// when the watcher fell behind the buffer or the cache was Reset, ErrClosed
// after Stop or when the store closes, and ctx.Err() when ctx ends (the
// watcher stays usable).
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	return w.next(ctx, false)
}

// NextOrBookmark is Next, except that when no event is pending and the
// cache's resourceVersion has moved past everything the watcher returned (a
// bookmark from the target, or a change that did not make an event), it
// returns an Event of type watch.Bookmark with a nil Object and that
// resourceVersion, once per advance. A server forwards it as a BOOKMARK to
// clients that allow them.
func (w *Watcher) NextOrBookmark(ctx context.Context) (Event, error) {
	return w.next(ctx, true)
}

func (w *Watcher) next(ctx context.Context, bookmarks bool) (Event, error) {
	for {
		if w.err != nil {
			return Event{}, w.err
		}
		select {
		case <-w.done:
			w.err = ErrClosed
			return Event{}, w.err
		default:
		}
		h := w.c.head.Load()
		if ev, ok := w.poll(h); ok || w.err != nil {
			return ev, w.err
		}
		if bookmarks && h.snap.rv > max(w.rv, w.bookmarkRV) {
			w.bookmarkRV = h.snap.rv
			return Event{Type: watch.Bookmark, ResourceVersion: h.snap.rv}, nil
		}
		select {
		case <-h.wake:
		case <-w.done:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// poll returns the next event if h has published it, or sets w.err when the
// watcher has ended.
func (w *Watcher) poll(h *head) (Event, bool) {
	switch {
	case h.closed:
		w.err = ErrClosed
		return Event{}, false
	case h.epoch != w.epoch:
		w.err = fmt.Errorf("%w: the cache was reset (the target's identity changed)", ErrExpired)
		return Event{}, false
	case w.cursor >= h.next:
		return Event{}, false
	}
	e := h.ring.load(w.cursor)
	if w.cursor < h.first || e == nil || e.seq != w.cursor {
		w.err = fmt.Errorf("%w: the watcher fell behind: its next event after resourceVersion %d left the event buffer", ErrExpired, w.rv)
		return Event{}, false
	}
	w.cursor++
	w.rv = e.ev.ResourceVersion
	return e.ev, true
}

// Pending reports whether Next would return an event (or an error) at once.
// A server writing events to a client buffers while Pending and flushes
// when it is not, so nothing it wrote waits in a buffer while Next blocks.
func (w *Watcher) Pending() bool {
	if w.err != nil {
		return true
	}
	h := w.c.head.Load()
	return h.closed || h.epoch != w.epoch || w.cursor < h.next
}

// ResourceVersion returns the resourceVersion the watcher has brought its
// client to: that of the last event returned, or, when no event is pending,
// of the newest state the cache holds, so that a bookmark sent with it never
// skips an event.
func (w *Watcher) ResourceVersion() uint64 {
	h := w.c.head.Load()
	if w.err == nil && h.epoch == w.epoch && !h.closed && w.cursor >= h.next {
		return max(w.rv, h.snap.rv)
	}
	return w.rv
}

// Stop ends the watcher: a blocked Next returns ErrClosed at once. It is
// safe to call from any goroutine, more than once.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() {
		close(w.done)
		w.c.forget(w)
	})
}
