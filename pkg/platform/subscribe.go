package platform

import (
	"context"
	"sync"
)

// Subscribe returns a channel that receives the ID of a target whenever its
// State changes, until ctx ends; then the channel is closed. Changes are
// coalesced per target while the receiver is busy: an ID is queued at most
// once besides the one being handed over, so the checker never waits for a
// receiver and no change goes untold; the receiver reads the current state
// with Decision, and may find it unchanged since the last time. This is what the mirror
// waits on to start a target's resources on a grant and to stop them and
// forget their data on a revocation. On a nil Checker the channel only
// closes when ctx ends.
func (c *Checker) Subscribe(ctx context.Context) <-chan string {
	out := make(chan string)
	s := &subscription{wake: make(chan struct{}, 1), queued: map[string]bool{}}
	if c != nil {
		c.mu.Lock()
		c.subs[s] = struct{}{}
		c.mu.Unlock()
	}
	go func() {
		defer close(out)
		if c != nil {
			defer func() {
				c.mu.Lock()
				delete(c.subs, s)
				c.mu.Unlock()
			}()
		}
		for {
			id, ok := s.pop()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-s.wake:
					continue
				}
			}
			select {
			case <-ctx.Done():
				return
			case out <- id:
			}
		}
	}()
	return out
}

// subscription is one Subscribe's queue of changed targets, in the order
// they first changed, each at most once.
type subscription struct {
	mu     sync.Mutex
	queue  []string
	queued map[string]bool
	wake   chan struct{}
}

// notify queues id unless it is queued already, and wakes the sender.
func (s *subscription) notify(id string) {
	s.mu.Lock()
	if !s.queued[id] {
		s.queued[id] = true
		s.queue = append(s.queue, id)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pop takes the first queued ID.
func (s *subscription) pop() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return "", false
	}
	id := s.queue[0]
	s.queue = s.queue[1:]
	delete(s.queued, id)
	return id, true
}
