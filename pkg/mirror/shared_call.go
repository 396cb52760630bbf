package mirror

import (
	"context"
	"sync"
)

// sharedCall runs a request to the target on behalf of many callers: a
// caller never gets the answer of a request that started before it asked
// (that answer could predate its request), but all callers that arrive
// while one runs share the next one. So N concurrent consistent reads cost at most two
// round trips to the target, not N.
type sharedCall[T any] struct {
	call func(context.Context) (T, error)

	mu      sync.Mutex
	running bool
	next    *sharedCallRound[T] // the call the next arrivals join; starts when the running one ends
}

type sharedCallRound[T any] struct {
	done   chan struct{}
	result T
	err    error
}

// Do returns the result of a call that started after Do was called.
func (p *sharedCall[T]) Do(ctx context.Context) (T, error) {
	p.mu.Lock()
	if p.next == nil {
		p.next = &sharedCallRound[T]{done: make(chan struct{})}
	}
	call := p.next
	if !p.running {
		p.startLocked()
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		return call.result, call.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// startLocked runs the pending call. The call runs without the callers'
// contexts: one caller giving up must not fail the others.
func (p *sharedCall[T]) startLocked() {
	call := p.next
	p.next = nil
	p.running = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), targetReadTimeout)
		call.result, call.err = p.call(ctx)
		cancel()
		close(call.done)
		p.mu.Lock()
		p.running = false
		if p.next != nil {
			p.startLocked()
		}
		p.mu.Unlock()
	}()
}
