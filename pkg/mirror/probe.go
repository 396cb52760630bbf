package mirror

import (
	"context"
	"sync"
)

// coalescedProbe runs a probe on behalf of many callers: a caller never gets
// the answer of a probe that started before it asked (that answer could
// predate its request), but all callers that arrive while one probe runs
// share the next one. So N concurrent consistent reads cost at most two
// round trips to the target, not N.
type coalescedProbe[T any] struct {
	probe func(context.Context) (T, error)

	mu      sync.Mutex
	running bool
	next    *probeCall[T] // the call the next arrivals join; starts when the running one ends
}

type probeCall[T any] struct {
	done   chan struct{}
	result T
	err    error
}

// Do returns the result of a probe that started after Do was called.
func (p *coalescedProbe[T]) Do(ctx context.Context) (T, error) {
	p.mu.Lock()
	if p.next == nil {
		p.next = &probeCall[T]{done: make(chan struct{})}
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

// startLocked runs the pending call. The probe runs without the callers'
// contexts: one caller giving up must not fail the others.
func (p *coalescedProbe[T]) startLocked() {
	call := p.next
	p.next = nil
	p.running = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		call.result, call.err = p.probe(ctx)
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
