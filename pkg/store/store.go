package store

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Options tune a Store. The zero value is valid.
type Options struct {
	// EventBufferSize is the number of events each cache keeps for watch
	// resumption and SnapshotAt (default 10000).
	EventBufferSize int
	// EventBufferBytes bounds the bytes of the objects those events hold
	// (default 64 MiB), so one client rewriting a large object cannot pin
	// EventBufferSize copies of it. The newest event is always kept; a
	// watch from before the oldest kept event gets ErrExpired (410).
	EventBufferBytes int64
	// FlushInterval is how long changes may wait in memory before they are
	// committed to the file (default 50ms). Many pending changes are
	// committed sooner.
	FlushInterval time.Duration
	// Logger receives the store's logs (default: none).
	Logger *zap.Logger
}

const (
	defaultEventBufferSize  = 10000
	defaultEventBufferBytes = 64 << 20
	defaultFlushInterval    = 50 * time.Millisecond
	// flushThreshold pending changes make the flusher commit before the
	// interval ends.
	flushThreshold = 8192
)

// Store is the set of caches, one per Key, and the bbolt file they persist
// to. Open loads the file; Close flushes and closes it.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *zap.Logger

	mu      sync.Mutex
	caches  map[Key]*Cache
	removed map[Key]bool // buckets the next flush deletes
	closed  bool

	flushMu sync.Mutex // one flush at a time
	pending atomic.Int64
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// Open opens the bbolt file at path, creating it if needed, and loads every
// cache in it: each is serving at once, at the resourceVersion and with the
// cluster UID of the last flush, and Synced (unless it had been Reset and
// not relisted since). A second process holding the
// file makes Open fail after a second. A cache whose records are unreadable
// is logged and starts empty (not Synced), to be relisted.
func Open(path string, opts Options) (*Store, error) {
	if opts.EventBufferSize <= 0 {
		opts.EventBufferSize = defaultEventBufferSize
	}
	if opts.EventBufferBytes <= 0 {
		opts.EventBufferBytes = defaultEventBufferBytes
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = defaultFlushInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	// The freelist is synced (bbolt's default): without it, Open would
	// read the whole file to rebuild it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		opts:    opts,
		log:     opts.Logger,
		caches:  map[Key]*Cache{},
		removed: map[Key]bool{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if err := s.checkFormat(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	start := time.Now()
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	objects := 0
	for _, c := range s.caches {
		objects += c.Snapshot().Len()
	}
	s.log.Info("store loaded", zap.String("path", path), zap.Int("caches", len(s.caches)),
		zap.Int("objects", objects), zap.Duration("took", time.Since(start)))
	go s.flusher()
	return s, nil
}

// Cache returns the cache of k, creating an empty one (resourceVersion 0,
// not Synced) if there is none. After Close it returns a closed cache.
func (s *Store) Cache(k Key) *Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.caches[k]; ok {
		return c
	}
	c := newCache(s, k, newObjectTree(), 0, "", false)
	if s.closed {
		c.close()
		return c
	}
	if s.removed[k] {
		// The bucket of a removed cache of this key may still be in
		// the file: this one starts from an empty bucket.
		c.pend = pending{reset: true, dirty: true}
	}
	s.caches[k] = c
	return c
}

// Caches returns the keys of all caches, sorted by Key.String.
func (s *Store) Caches() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]Key, 0, len(s.caches))
	for k := range s.caches {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return keys
}

// Remove drops the cache of k (a resource no longer mirrored): its watchers
// end with ErrClosed, its writer gets ErrClosed, and its bucket leaves the
// file at the next flush. A later Cache(k) starts empty.
func (s *Store) Remove(k Key) {
	s.mu.Lock()
	c, ok := s.caches[k]
	if ok && !s.closed {
		delete(s.caches, k)
		s.removed[k] = true
	}
	s.mu.Unlock()
	if ok {
		c.close()
		s.noteDirty(1)
	}
}

// Close stops every cache (writers and watchers get ErrClosed; reads keep
// answering from memory), commits the pending changes, and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	caches := make([]*Cache, 0, len(s.caches))
	for _, c := range s.caches {
		caches = append(caches, c)
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.stopped
	for _, c := range caches {
		c.close()
	}
	return errors.Join(s.Flush(), s.db.Close())
}

// noteDirty counts n pending changes and wakes the flusher early when
// many are pending.
func (s *Store) noteDirty(n int) {
	if s.pending.Add(int64(n)) >= flushThreshold {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// flusher commits pending changes every FlushInterval, or when kicked.
func (s *Store) flusher() {
	defer close(s.stopped)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		if s.pending.Load() == 0 {
			continue
		}
		switch err := s.Flush(); {
		case err != nil:
			failures++
			if failures == 1 || failures%100 == 0 {
				s.log.Error("store flush failed; the changes stay pending and are retried",
					zap.Int("failures", failures), zap.Error(err))
			}
		case failures > 0:
			s.log.Info("store flush succeeded again", zap.Int("failures", failures))
			failures = 0
		}
	}
}

// loadWorkers bounds the caches loaded in parallel.
func loadWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 8)) }
