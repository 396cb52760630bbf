// Package store is the mirror's state and what every read is answered from.
//
// Contract: an in-memory index of objects kept as their serialized JSON (a
// list copies bytes, it never re-encodes), immutable snapshots for
// consistent pagination and resourceVersionMatch=Exact, and a watch event
// buffer in resourceVersion order; a watch from a resourceVersion older than
// the buffer answers 410 Expired. Everything is persisted in one bbolt file
// (one bucket per target and resource, with the last resourceVersion and the
// target's cluster UID beside the data), written in batches so the event rate
// is not bound by fsync. On start the file is loaded and served at once.
//
// # Shape
//
// A Store holds one Cache per Key (target, group, version, resource). A
// Cache has exactly one writer, the reflector of its resource, whose calls
// (Add, Update, Delete, Replace, Bookmark) have the shape of a client-go
// store, and any number of readers (Get, Snapshot, SnapshotAt, Watch,
// WaitForResourceVersion). Objects are *Object values built once by
// NewObject, which decodes only the metadata the store needs; the store
// never copies, modifies or re-encodes them.
//
// # Consistency
//
// A cache's resourceVersion only grows: a change that does not move it
// forward is dropped, logged, and reported as ErrStaleResourceVersion.
// Reset (the target's identity changed) is the one exception: it drops
// everything, sets the resourceVersion to 0, and ends every watcher with
// ErrExpired so that clients relist instead of resuming from a
// resourceVersion of another cluster.
//
// Every change publishes a new immutable state with one atomic pointer
// store: readers never block on the writer or on bbolt, and what they read
// (snapshot, resourceVersion, event sequence) is always one consistent
// state. Watch with withState returns a snapshot and a watcher that starts
// exactly after it: no gap, no duplicate.
//
// A relist (Replace) emits the exact difference to the cache as ADDED and
// MODIFIED at the objects' resourceVersions and DELETED at the list's
// resourceVersion; watchers see a relist as a whole. The states between
// the previous resourceVersion and the list's were never observed, so
// SnapshotAt and Watch answer ErrExpired inside that gap: a client holding
// a resourceVersion there (say, from before a crash that lost the last
// unflushed events) may hold an object created and deleted inside the gap,
// whose deletion the relist cannot know; it must relist. The first sync's
// gap starts at 0, so after a Reset no resourceVersion of the old cluster
// below the new list's resumes. Several deletions of one
// relist share the list's resourceVersion: a client that breaks its watch
// in the middle of them and resumes from that resourceVersion misses the
// rest, as no resourceVersion tells them apart.
//
// # Event buffer and snapshots
//
// Each cache keeps its last Options.EventBufferSize events (default 10000)
// in a ring shared by all its watchers. A Watcher is a cursor into the ring;
// every append closes one channel that all watchers wait on. An idle
// watcher costs about 230 bytes of heap (3 to 4.5 KiB with the goroutine
// that drives it, BenchmarkWatchFanout1000); a watcher whose cursor falls
// out of the ring gets ErrExpired.
//
// With every event the cache keeps a copy-on-write clone of its btree (as
// the kube-apiserver's cacher does with ListFromCacheSnapshot), so
// SnapshotAt answers any resourceVersion in the ring's window in O(log n).
// The cost is the tree path each later write copies. BenchmarkUpdate
// measures what a kept event holds besides its JSON (the tree path, the
// buffer entry, the Object header): about 1.3 KiB per event in a cache of
// 10,000 objects and 1.7 KiB in one of 100,000 (btree degree 8; degree 16
// and 32 cost more). With the default buffer a busy cache of 100,000
// objects holds about 17 MiB of it, plus the JSON of the objects its
// events replaced; an idle cache holds none. The ring itself is
// EventBufferSize pointers (80 KiB per cache by default), and
// EventBufferSize bounds all of it.
//
// # Persistence
//
// The file has one bucket per Key, named Key.String()
// ("target/group/version/resource", each part path-escaped), holding a
// nested bucket "objects" ("namespace/name" -> a small binary header with
// resourceVersion, UID and labels, then the JSON, so loading never parses
// JSON) and a JSON record "meta" (the bucket's resourceVersion, the
// target's cluster UID, and whether the content is a synced state); and a
// bucket "crproxy.store" with the file's format version. A cache that was
// never written is not in the file. Changes are
// coalesced per object in memory and a background flusher commits them at
// most every Options.FlushInterval (default 50ms), sooner when thousands
// are pending, in one transaction with each cache's resourceVersion: the
// file always holds, for every cache, the exact state at its recorded
// resourceVersion, possibly slightly older than memory. A failed commit is
// logged and retried with the next one; memory keeps serving. Close
// flushes. Open loads every bucket (in parallel) and serves at once: the
// loaded caches are Synced (unless they were Reset and not relisted since)
// at the file's resourceVersion, and the event
// buffer starts there, so watches from older resourceVersions answer
// ErrExpired.
//
// # Errors
//
//   - ErrExpired: HTTP 410 Gone, reason Expired.
//   - ErrResourceVersionTooLarge: the kube-apiserver's "Too large resource
//     version" (504, cause ResourceVersionTooLarge), after a bounded
//     WaitForResourceVersion.
//   - ErrStaleResourceVersion: for the writer only; the change was dropped.
//   - ErrClosed: the watcher was stopped or the store closed.
package store
