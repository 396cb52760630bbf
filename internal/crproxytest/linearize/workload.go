package linearize

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Workload runs concurrent clients against the groups of a Recorder: per
// group, one writing client for each of Writers and one reading client for
// each of Readers.
type Workload struct {
	Recorder *Recorder
	// Writers create, patch and delete; Readers GET and LIST.
	Writers, Readers []*Endpoint
	// Pause is the most a client waits between two operations (a random
	// wait up to it), so that a few clients make a history of a size
	// porcupine checks quickly.
	Pause time.Duration
	// Timeout bounds one operation; a write that runs out has an unknown
	// outcome. Default 10 s.
	Timeout time.Duration

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// MixedWorkload is the mix that the e2e and soak checks run: per group,
// two writers straight at the target (the writes crproxy did not see
// coming), one through crproxy straight and one through the client
// cluster; two readers through crproxy straight and one through the
// client cluster. Each client waits up to pause between operations.
func MixedWorkload(rec *Recorder, atTarget, straight, viaClient *Endpoint, pause time.Duration) *Workload {
	return &Workload{
		Recorder: rec,
		Writers:  []*Endpoint{atTarget, atTarget, straight, viaClient},
		Readers:  []*Endpoint{straight, straight, viaClient},
		Pause:    pause,
	}
}

// colors are the values of ColorLabel.
var colors = []string{"red", "blue"}

// Start starts the clients; Stop ends them.
func (w *Workload) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	id := 0
	for g := range w.Recorder.groups {
		for _, ep := range w.Writers {
			w.wg.Add(1)
			go func(client int) { defer w.wg.Done(); w.write(ctx, client, ep, g) }(id)
			id++
		}
		for _, ep := range w.Readers {
			w.wg.Add(1)
			go func(client int) { defer w.wg.Done(); w.read(ctx, client, ep, g) }(id)
			id++
		}
	}
}

// Stop ends the clients and waits for their operations in flight.
func (w *Workload) Stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *Workload) pause(ctx context.Context) {
	if w.Pause <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(rand.N(w.Pause)):
	}
}

// op runs f with the operation timeout, detached from ctx: stopping the
// workload lets operations in flight finish, so their outcome is known.
func (w *Workload) op(f func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	f(ctx)
}

func (w *Workload) write(ctx context.Context, client int, ep *Endpoint, group int) {
	keys := w.Recorder.groups[group].Keys
	for seq := 1; ctx.Err() == nil; seq++ {
		in := Input{Group: group, Key: rand.IntN(keys)}
		switch r := rand.IntN(10); {
		case r < 4:
			in.Kind = Patch
		case r < 7:
			in.Kind = Create
		default:
			in.Kind = Delete
		}
		if in.Kind != Delete {
			// Unique in the history: the answer of a read names the write.
			in.Value = fmt.Sprintf("c%d-%d", client, seq)
			in.Color = colors[rand.IntN(len(colors))]
		}
		w.op(func(ctx context.Context) { w.Recorder.Write(ctx, client, ep, in) })
		w.pause(ctx)
	}
}

func (w *Workload) read(ctx context.Context, client int, ep *Endpoint, group int) {
	keys := w.Recorder.groups[group].Keys
	for ctx.Err() == nil {
		in := Input{Group: group}
		switch r := rand.IntN(10); {
		case r < 5:
			in.Kind, in.Key = Get, rand.IntN(keys)
		case r < 7:
			in.Kind = List
		case r < 8:
			in.Kind, in.Selector = List, colors[rand.IntN(len(colors))]
		default:
			// Pages of one or two objects, with a selector half the time.
			in.Kind, in.Limit = List, 1+rand.IntN(2)
			if rand.IntN(2) == 0 {
				in.Selector = colors[rand.IntN(len(colors))]
			}
		}
		w.op(func(ctx context.Context) { w.Recorder.Read(ctx, client, ep, in) })
		w.pause(ctx)
	}
}
