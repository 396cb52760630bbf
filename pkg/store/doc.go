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
package store
