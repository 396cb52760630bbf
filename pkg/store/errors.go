package store

import "errors"

// ErrExpired reports that the history a request needs is no longer kept: a
// watch or snapshot from a resourceVersion older than the event buffer, a
// watcher that fell so far behind that its next event left the buffer, a
// watch or snapshot inside a relist's gap, or a watcher whose cache was
// Reset. The
// server answers it with HTTP 410 Gone, reason Expired, and the client
// relists.
var ErrExpired = errors.New("resource version expired")

// ErrClosed reports a Watcher that was stopped, or a Store (and its caches)
// that was closed.
var ErrClosed = errors.New("closed")

// ErrResourceVersionTooLarge reports a watch or snapshot from a
// resourceVersion newer than the newest state the cache holds. The
// kube-apiserver answers it, after a bounded wait, with a 504 Timeout whose
// cause is ResourceVersionTooLarge; a caller that wants to wait first uses
// Cache.WaitForResourceVersion.
var ErrResourceVersionTooLarge = errors.New("resource version too large")

// ErrStaleResourceVersion reports a change whose resourceVersion does not
// move the cache forward: an Add, Update or Delete at or below the cache's
// resourceVersion, or a Bookmark or Replace below it. The change is dropped
// (and logged); the cache is unchanged.
var ErrStaleResourceVersion = errors.New("stale resource version")
