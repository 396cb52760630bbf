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
type coalescedProbe struct {
	probe func(context.Context) (uint64, error)

	mu      sync.Mutex
	running bool
	next    *probeCall // the call the next arrivals join; starts when the running one ends
}

type probeCall struct {
	done chan struct{}
	rv   uint64
	err  error
}

// Do returns the result of a probe that started after Do was called.
func (p *coalescedProbe) Do(ctx context.Context) (uint64, error) {
	p.mu.Lock()
	if p.next == nil {
		p.next = &probeCall{done: make(chan struct{})}
	}
	call := p.next
	if !p.running {
		p.startLocked()
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		return call.rv, call.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// startLocked runs the pending call. The probe runs without the callers'
// contexts: one caller giving up must not fail the others.
func (p *coalescedProbe) startLocked() {
	call := p.next
	p.next = nil
	p.running = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		call.rv, call.err = p.probe(ctx)
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
