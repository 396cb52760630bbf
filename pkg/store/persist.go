package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// The file holds one top-level bucket per cache, named Key.String(), and
// the bucket formatBucket. A cache's bucket holds the record metaKey (the
// resourceVersion and cluster UID of the state the bucket holds) and the
// nested bucket objectsBucket: "namespace/name" -> record (see
// appendRecord). Every flush writes the objects and the resourceVersion in
// one transaction, so each bucket always holds the state at its recorded
// resourceVersion.
var (
	formatBucket  = []byte("crproxy.store")
	formatKey     = []byte("format")
	formatValue   = []byte("1")
	metaKey       = []byte("meta")
	objectsBucket = []byte("objects")
)

// pending is what a cache changed since the last flush.
type pending struct {
	dirty bool
	// reset: the bucket's objects are dropped before objs are written.
	reset  bool
	objs   map[string]*Object // key -> latest state; nil: deleted
	rv     uint64
	uid    string
	synced bool
}

// take returns the pending changes and clears them.
func (c *Cache) take() (pending, bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	p := c.pend
	c.pend = pending{}
	return p, p.dirty
}

// giveBack puts changes a failed flush did not write back before the ones
// made since.
func (c *Cache) giveBack(p pending) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	cur := c.pend
	switch {
	case !cur.dirty:
		c.pend = p
	case cur.reset:
		// Everything older is superseded.
	default:
		if p.objs == nil {
			p.objs = map[string]*Object{}
		}
		for k, o := range cur.objs {
			p.objs[k] = o
		}
		p.rv, p.uid, p.synced = cur.rv, cur.uid, cur.synced
		c.pend = p
	}
}

type flushBatch struct {
	c *Cache
	p pending
}

// Flush commits every pending change now, in one transaction. The flusher
// calls it in the background; callers need it only to make a point durable
// (Close flushes too).
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.pending.Store(0)

	s.mu.Lock()
	removed := s.removed
	s.removed = map[Key]bool{}
	caches := make([]*Cache, 0, len(s.caches))
	for _, c := range s.caches {
		caches = append(caches, c)
	}
	s.mu.Unlock()

	var batches []flushBatch
	for _, c := range caches {
		if p, ok := c.take(); ok {
			batches = append(batches, flushBatch{c, p})
		}
	}
	if len(batches) == 0 && len(removed) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for k := range removed {
			if err := tx.DeleteBucket([]byte(k.String())); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
		}
		var buf []byte
		for _, b := range batches {
			var err error
			if buf, err = writeBatch(tx, b, buf); err != nil {
				return fmt.Errorf("cache %s: %w", b.c.key, err)
			}
		}
		return nil
	})
	if err != nil {
		for _, b := range batches {
			b.c.giveBack(b.p)
		}
		s.mu.Lock()
		for k := range removed {
			if _, back := s.caches[k]; !back {
				s.removed[k] = true
			}
		}
		s.mu.Unlock()
		s.noteDirty(len(batches) + len(removed))
		return fmt.Errorf("flush store: %w", err)
	}
	return nil
}

// writeBatch writes one cache's changes; buf is scratch space.
func writeBatch(tx *bolt.Tx, b flushBatch, buf []byte) ([]byte, error) {
	bk, err := tx.CreateBucketIfNotExists([]byte(b.c.key.String()))
	if err != nil {
		return buf, err
	}
	if b.p.reset {
		if err := bk.DeleteBucket(objectsBucket); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return buf, err
		}
	}
	ob, err := bk.CreateBucketIfNotExists(objectsBucket)
	if err != nil {
		return buf, err
	}
	// In key order: bbolt inserts sequential keys much faster.
	keys := make([]string, 0, len(b.p.objs))
	for k := range b.p.objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o := b.p.objs[k]
		if o == nil {
			if err := ob.Delete([]byte(k)); err != nil {
				return buf, err
			}
			continue
		}
		buf = appendRecord(buf[:0], o)
		// bbolt keeps the value until the commit: it needs its own copy.
		if err := ob.Put([]byte(k), bytes.Clone(buf)); err != nil {
			return buf, err
		}
	}
	return buf, bk.Put(metaKey, encodeMeta(meta{
		ResourceVersion: strconv.FormatUint(b.p.rv, 10),
		ClusterUID:      b.p.uid,
		Synced:          b.p.synced,
	}))
}

// checkFormat stamps a new file and refuses a file of another format.
func (s *Store) checkFormat() error {
	var v []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(formatBucket); b != nil {
			v = bytes.Clone(b.Get(formatKey))
		}
		return nil
	}); err != nil {
		return err
	}
	if v != nil && bytes.Equal(v, formatValue) {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(formatBucket)
		if err != nil {
			return err
		}
		switch v := b.Get(formatKey); {
		case v == nil:
			return b.Put(formatKey, formatValue)
		case !bytes.Equal(v, formatValue):
			return fmt.Errorf("the file has store format %q; this crproxy reads format %q", v, formatValue)
		}
		return nil
	})
}

// load builds a cache from every bucket of the file, several at once.
func (s *Store) load() error {
	var names []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if !bytes.Equal(name, formatBucket) {
				names = append(names, string(name))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, loadWorkers())
		mu  sync.Mutex
	)
	for _, name := range names {
		k, err := parseKey(name)
		if err != nil {
			s.log.Warn("ignoring a bucket that is not a cache", zap.String("bucket", name), zap.Error(err))
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := s.loadCache(k)
			mu.Lock()
			s.caches[k] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	return nil
}

// loadCache reads the bucket of k. Unreadable content gives an empty cache
// whose bucket the next flush rewrites.
func (s *Store) loadCache(k Key) *Cache {
	var (
		tree = newObjectTree()
		rv   uint64
		m    meta
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(k.String()))
		mb := bk.Get(metaKey)
		if mb == nil {
			return errors.New("no meta record")
		}
		var err error
		if rv, m, err = decodeMeta(mb); err != nil {
			return err
		}
		ob := bk.Bucket(objectsBucket)
		if ob == nil {
			return nil
		}
		var in interner
		mapped := mappedPages{base: s.db.Info().Data, end: s.db.Info().Data + uintptr(tx.Size())}
		defer mapped.release()
		cur := ob.Cursor()
		for key, val := cur.First(); key != nil; key, val = cur.Next() {
			o, err := decodeRecord(key, val, &in)
			if err != nil {
				return err
			}
			tree.ReplaceOrInsert(o)
			mapped.read(val)
		}
		return nil
	})
	if err != nil {
		s.log.Error("cache in the file is unreadable; it starts empty and will be relisted", zap.Stringer("cache", k), zap.Error(err))
		c := newCache(s, k, newObjectTree(), 0, "", false)
		c.pend = pending{reset: true, dirty: true}
		s.pending.Add(1)
		return c
	}
	s.log.Debug("cache loaded", zap.Stringer("cache", k), zap.Int("objects", tree.Len()), zap.Uint64("resourceVersion", rv))
	return newCache(s, k, tree, rv, m.ClusterUID, m.Synced)
}
