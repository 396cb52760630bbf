package reconnect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Group: "example.com", Resource: "myresources"}
	for _, tc := range []struct {
		err  error
		want State
	}{
		{nil, ""},
		{errRefused, Unreachable},
		{fmt.Errorf("wrapped: %w", errRefused), Unreachable},
		{apierrors.NewServiceUnavailable("down"), Unreachable},
		{apierrors.NewTimeoutError("slow", 1), Unreachable},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), Forbidden},
		{apierrors.NewUnauthorized("who"), Forbidden},
		{apierrors.NewNotFound(gr, "x"), ""},
		{apierrors.NewConflict(gr, "x", errors.New("rv")), ""},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestObserveMovesThroughTheStates(t *testing.T) {
	var changes []State
	tr := NewTracker("p/t", Options{OnChange: func(s Status) { changes = append(changes, s.State) }})
	if _, down := tr.Down(); down {
		t.Fatal("a new tracker is down")
	}
	tr.Observe(errRefused)
	since, down := tr.Down()
	if !down || time.Since(since) > time.Second {
		t.Fatalf("after a refused connection: down=%v since %v", down, since)
	}
	tr.Observe(errRefused) // no change: Since stays
	if s2, _ := tr.Down(); !s2.Equal(since) {
		t.Fatal("a repeated error moved Since")
	}
	tr.Observe(apierrors.NewNotFound(schema.GroupResource{}, "x")) // an answer, but not a success: no change
	tr.Observe(nil)
	tr.MarkSynced()
	want := []State{Unreachable, Resyncing, Connected}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	if st := tr.Status(); st.Reconnects != 1 || st.LastError != "" {
		t.Fatalf("status %+v, want one reconnect and no error", st)
	}
}

func TestRetryBacksOffAndReturnsOtherErrorsAtOnce(t *testing.T) {
	tr := NewTracker("p/t", Options{InitialInterval: 10 * time.Millisecond, MaxInterval: 40 * time.Millisecond})
	var calls atomic.Int32
	start := time.Now()
	err := tr.Retry(context.Background(), func(context.Context) error {
		if calls.Add(1) < 5 {
			return errRefused
		}
		return nil
	})
	if err != nil || calls.Load() != 5 {
		t.Fatalf("Retry = %v after %d calls", err, calls.Load())
	}
	// Four waits of 10, 20, 40, 40 ms ±50%: at least 55 ms in all.
	if took := time.Since(start); took < 55*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Retry took %s", took)
	}
	notFound := apierrors.NewNotFound(schema.GroupResource{}, "x")
	calls.Store(0)
	if err := tr.Retry(context.Background(), func(context.Context) error { calls.Add(1); return notFound }); err != notFound || calls.Load() != 1 {
		t.Fatalf("a non-connection error: %v after %d calls", err, calls.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Retry(ctx, func(context.Context) error { return errRefused }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retry after its context ended: %v", err)
	}
}

// An op that fails because its caller stopped it (the context ended)
// leaves the target's state as it was: a dropped resource's follower
// must not mark a healthy target unreachable.
func TestRetryStoppedByItsCallerObservesNothing(t *testing.T) {
	tr := NewTracker("p/t", Options{})
	tr.MarkSynced()
	ctx, cancel := context.WithCancel(context.Background())
	err := tr.Retry(ctx, func(context.Context) error {
		cancel()
		return errRefused
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry = %v, want context.Canceled", err)
	}
	if st := tr.Status(); st.State != Connected {
		t.Fatalf("the target is %s after a cancelled op, want Connected", st.State)
	}
}

func TestRetryWakesWhenTheProbeSeesTheTargetBack(t *testing.T) {
	var up atomic.Bool
	tr := NewTracker("p/t", Options{InitialInterval: 10 * time.Second, MaxInterval: 10 * time.Second, Probe: func(context.Context) error {
		if up.Load() {
			return nil
		}
		return errRefused
	}})
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- tr.Retry(context.Background(), func(context.Context) error {
			if calls.Add(1) == 1 {
				return errRefused
			}
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond) // Retry now waits its 10 s backoff
	up.Store(true)
	if err := tr.ProbeNow(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Retry did not wake when the probe saw the target back")
	}
}

func TestCheckReachableProbesAtMostEvery500ms(t *testing.T) {
	var probes atomic.Int32
	tr := NewTracker("p/t", Options{Probe: func(context.Context) error { probes.Add(1); return errRefused }})
	if _, down := tr.CheckReachable(context.Background()); down {
		t.Fatal("connected tracker reported down")
	}
	tr.Observe(errRefused)
	for range 10 {
		if _, down := tr.CheckReachable(context.Background()); !down {
			t.Fatal("an unreachable target was reported reachable")
		}
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("%d probes for 10 quick writes, want 1", n)
	}
}

func TestRunProbesAtOnceWhenARequestLosesTheTarget(t *testing.T) {
	var probes atomic.Int32
	tr := NewTracker("p/t", Options{ProbeInterval: time.Hour, Probe: func(context.Context) error { probes.Add(1); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s within 2 s (probes: %d, state %s)", what, probes.Load(), tr.Status().State)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the first probe", func() bool { return probes.Load() == 1 })
	// A request's connection is reset: the target is unreachable until a
	// probe, which comes now and not in an hour.
	tr.Observe(errRefused)
	waitFor("a probe after the lost request", func() bool { return probes.Load() == 2 })
	waitFor("the target back", func() bool { _, down := tr.Down(); return !down })
}

// The wake-up is for a request's news only: a probe's own failure, and a
// target that refuses the identity, leave Run to its schedule.
func TestRunKeepsItsScheduleForOtherNews(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe error
		then  error
	}{
		{"a failing probe", errRefused, nil},
		{"a forbidden request", nil, apierrors.NewForbidden(schema.GroupResource{Resource: "myresources"}, "x", errors.New("no"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var probes atomic.Int32
			tr := NewTracker("p/t", Options{InitialInterval: time.Hour, MaxInterval: time.Hour, ProbeInterval: time.Hour,
				Probe: func(context.Context) error { probes.Add(1); return tc.probe }})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go tr.Run(ctx)
			for probes.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			if tc.then != nil {
				tr.Observe(tc.then)
			}
			time.Sleep(200 * time.Millisecond)
			if n := probes.Load(); n != 1 {
				t.Fatalf("%d probes, want 1 (the next is an hour away)", n)
			}
		})
	}
}
