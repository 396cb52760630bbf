package reconnect

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultInitialInterval = 200 * time.Millisecond
	DefaultMaxInterval     = 10 * time.Second
	DefaultProbeInterval   = 5 * time.Second
	DefaultProbeTimeout    = 5 * time.Second
)

// Options configures a Tracker.
type Options struct {
	// InitialInterval and MaxInterval bound the exponential backoff
	// between attempts (DefaultInitialInterval and DefaultMaxInterval when
	// 0). Intervals grow by 2x with ±50% jitter.
	InitialInterval, MaxInterval time.Duration
	// Probe asks the target cheaply whether it answers (a GET of
	// /readyz); nil disables probing.
	Probe func(context.Context) error
	// ProbeInterval is the probe's period while the target is connected
	// (DefaultProbeInterval when 0); while it is not, the probe follows
	// the backoff.
	ProbeInterval time.Duration
	// OnChange, when set, is called after every state change.
	OnChange func(Status)
	// Logger logs state changes; zap.NewNop when nil.
	Logger *zap.Logger
}

// Tracker follows one target's connection state. It is safe for
// concurrent use.
type Tracker struct {
	opts Options
	log  *zap.Logger

	mu     sync.Mutex
	status Status
	// back is closed when the target is seen answering after being
	// unreachable or forbidden, to wake the retry loops early.
	back              chan struct{}
	lastOnDemandProbe time.Time
	// lost wakes Run when a request, not its probe, finds a target that
	// was not down (Connected or Resyncing) unreachable: the next probe
	// comes at once instead of after ProbeInterval, so one lost request
	// costs consistent reads a probe's round trip of Warnings, not
	// seconds.
	lost chan struct{}
}

// NewTracker returns a tracker for target, Connected until told otherwise.
func NewTracker(target string, opts Options) *Tracker {
	if opts.InitialInterval == 0 {
		opts.InitialInterval = DefaultInitialInterval
	}
	if opts.MaxInterval == 0 {
		opts.MaxInterval = DefaultMaxInterval
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Tracker{
		opts:   opts,
		log:    opts.Logger.With(zap.String("target", target)),
		status: Status{Target: target, State: Connected, Since: time.Now()},
		back:   make(chan struct{}),
		lost:   make(chan struct{}, 1),
	}
}

// newBackoff is one retry loop's schedule (Backoff of the tracker's
// intervals).
func (t *Tracker) newBackoff() *backoff.ExponentialBackOff {
	return Backoff(t.opts.InitialInterval, t.opts.MaxInterval)
}

// Backoff is crproxy's retry schedule for a peer that fails: exponential
// from initial, doubling with ±50% jitter, capped at max, never giving up
// (the caller's context ends it).
func Backoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// Status returns the current state.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// Down reports whether the target is unreachable, and since when.
func (t *Tracker) Down() (since time.Time, down bool) {
	s := t.Status()
	return s.Since, s.State == Unreachable
}

// Observe records the outcome of a request to the target: an error that
// Classify maps to a state moves the tracker there; success (nil) from
// an unreachable or forbidden target moves it to Resyncing.
func (t *Tracker) Observe(err error) {
	switch state := Classify(err); state {
	case "":
		if err == nil {
			t.answered()
		}
	default:
		t.set(state, err)
	}
}

// MarkSynced records that the mirror is current again (a list or a watch
// was established): the target is Connected.
func (t *Tracker) MarkSynced() { t.set(Connected, nil) }

// EventReceived records that an event or bookmark arrived.
func (t *Tracker) EventReceived() {
	t.mu.Lock()
	t.status.LastEvent = time.Now()
	t.mu.Unlock()
}

// answered moves an unreachable or forbidden target to Resyncing.
func (t *Tracker) answered() {
	t.mu.Lock()
	state := t.status.State
	t.mu.Unlock()
	if state == Unreachable || state == Forbidden {
		t.set(Resyncing, nil)
	}
}

func (t *Tracker) set(state State, err error) {
	t.mu.Lock()
	old := t.status
	if old.State == state {
		if err != nil {
			t.status.LastError = err.Error()
		}
		t.mu.Unlock()
		return
	}
	t.status.State = state
	t.status.Since = time.Now()
	t.status.LastError = ""
	if err != nil {
		t.status.LastError = err.Error()
	}
	wasDown := old.State == Unreachable || old.State == Forbidden
	isDown := state == Unreachable || state == Forbidden
	if wasDown && !isDown {
		t.status.Reconnects++
		close(t.back)
		t.back = make(chan struct{})
	}
	if state == Unreachable && !wasDown {
		select {
		case t.lost <- struct{}{}:
		default:
		}
	}
	now := t.status
	t.mu.Unlock()

	fields := []zap.Field{zap.String("from", string(old.State)), zap.String("to", string(state))}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	if isDown {
		t.log.Warn("target connection state changed", fields...)
	} else {
		t.log.Info("target connection state changed", fields...)
	}
	if t.opts.OnChange != nil {
		t.opts.OnChange(now)
	}
}

// backChannel is closed when the target is next seen answering.
func (t *Tracker) backChannel() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.back
}

// Retry runs op until it succeeds, fails with an error that says nothing
// about the connection (returned as is), or ctx ends. Between attempts
// that failed for connection reasons it waits by the exponential backoff,
// or less when the probe sees the target back. Every outcome is observed
// but the failure of an op whose ctx ended: the caller stopped it (a
// resource dropped, crproxy stopping), which says nothing of the target.
func (t *Tracker) Retry(ctx context.Context, op func(context.Context) error) error {
	b := t.newBackoff()
	for {
		err := op(ctx)
		if err != nil && ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		t.Observe(err)
		if err == nil || Classify(err) == "" {
			return err
		}
		timer := time.NewTimer(b.NextBackOff())
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.Join(ctx.Err(), err)
		case <-t.backChannel():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Run probes the target until ctx ends: every ProbeInterval while it is
// connected, by the backoff while it is not, and at once when a request
// finds a connected target gone.
func (t *Tracker) Run(ctx context.Context) {
	if t.opts.Probe == nil {
		return
	}
	b := t.newBackoff()
	for {
		err := t.ProbeNow(ctx, DefaultProbeTimeout)
		wait := t.opts.ProbeInterval
		if err != nil {
			wait = b.NextBackOff()
			// The loss this probe may have reported itself is no news.
			select {
			case <-t.lost:
			default:
			}
		} else {
			b.Reset()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-t.lost:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// ProbeNow probes the target once, bounded by timeout, and observes the
// outcome. A probe that fails for a reason other than the connection
// (the identity may not read /readyz) counts as an answer.
func (t *Tracker) ProbeNow(ctx context.Context, timeout time.Duration) error {
	if t.opts.Probe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := t.opts.Probe(ctx)
	if Classify(err) == Forbidden {
		err = nil
	}
	if err != nil {
		t.Observe(err)
		return err
	}
	t.answered()
	return nil
}

// onDemandProbeTimeout bounds the probe a write makes before failing fast.
const onDemandProbeTimeout = time.Second

// CheckReachable is what a write asks before it is sent: it returns
// down=false when the target is not known to be unreachable, or when a
// quick probe (at most one per 500 ms, bounded to a second) finds it back;
// otherwise down=true and since when, so the write fails fast.
func (t *Tracker) CheckReachable(ctx context.Context) (since time.Time, down bool) {
	since, down = t.Down()
	if !down || t.opts.Probe == nil {
		return since, down
	}
	t.mu.Lock()
	fresh := time.Since(t.lastOnDemandProbe) < 500*time.Millisecond
	if !fresh {
		t.lastOnDemandProbe = time.Now()
	}
	t.mu.Unlock()
	if !fresh && t.ProbeNow(ctx, onDemandProbeTimeout) == nil {
		return time.Time{}, false
	}
	return t.Down()
}

// NewBackoff returns a fresh schedule of the tracker's backoff, for retry
// loops that decide themselves when to stop.
func (t *Tracker) NewBackoff() backoff.BackOff { return t.newBackoff() }
