package mirror

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers that arrive while a call runs share the next call, and nobody
// gets the answer of a call that started before they asked.
func TestSharedCallShares(t *testing.T) {
	var started atomic.Int64
	release := make(chan struct{})
	p := &sharedCall[uint64]{call: func(context.Context) (uint64, error) {
		n := started.Add(1)
		<-release
		return uint64(n), nil
	}}
	first := make(chan uint64)
	go func() { rv, _ := p.Do(context.Background()); first <- rv }()
	for started.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	results := make([]uint64, 50)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], _ = p.Do(context.Background()) }()
	}
	time.Sleep(50 * time.Millisecond) // let them all join
	close(release)
	if rv := <-first; rv != 1 {
		t.Fatalf("first caller got call %d, want 1", rv)
	}
	wg.Wait()
	for i, rv := range results {
		if rv != 2 {
			t.Fatalf("caller %d got call %d; want 2 (the call started after it asked, shared)", i, rv)
		}
	}
	if n := started.Load(); n != 2 {
		t.Fatalf("%d calls ran for 51 callers; want 2", n)
	}
}

// A caller whose context ends stops waiting without failing the others.
func TestSharedCallCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	p := &sharedCall[uint64]{call: func(context.Context) (uint64, error) { <-release; return 7, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Do(ctx); err == nil {
		t.Fatal("Do with a cancelled context returned no error")
	}
	done := make(chan uint64)
	go func() { rv, _ := p.Do(context.Background()); done <- rv }()
	close(release)
	if rv := <-done; rv != 7 {
		t.Fatalf("got %d, want 7", rv)
	}
}
