package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// Defaults of Options.
const (
	// DefaultInterval is how often a target is checked again: a grant or a
	// revocation takes effect within it.
	DefaultInterval = 5 * time.Second
	// DefaultTimeout bounds one SubjectAccessReview.
	DefaultTimeout = 5 * time.Second
	// DefaultMinRecheckInterval is the least time between two checks of
	// one target that Recheck asks for.
	DefaultMinRecheckInterval = time.Second
)

// DialTimeout bounds a TCP connection to the management cluster, in the
// clients NewForConfig builds.
const DialTimeout = 5 * time.Second

// Options configures a Checker.
type Options struct {
	// Client is the client virtual cluster: its Identity() is the user
	// checked, its project the default of the targets' projects.
	Client config.Client
	// Targets are the targets to check; an empty Project means the
	// client's. Targets with the same ID are checked once.
	Targets []config.Target
	// Interval is how often each target is checked (DefaultInterval when
	// 0), whatever the last answer: a grant and a revocation both take
	// effect within it.
	Interval time.Duration
	// Timeout bounds each SubjectAccessReview (DefaultTimeout when 0).
	Timeout time.Duration
	// InitialBackoff and MaxBackoff bound the exponential backoff, with
	// jitter as in package reconnect, between the checks of a target while
	// the management cluster fails (reconnect.DefaultInitialInterval and
	// Interval when 0): at first it is retried sooner than Interval, never
	// less often.
	InitialBackoff, MaxBackoff time.Duration
	// MinRecheckInterval is the least time between the start of a check and
	// a check asked for by Recheck (DefaultMinRecheckInterval when 0).
	MinRecheckInterval time.Duration
	// OnChange, when set, is called after a target's State changed, with
	// its new Decision. It is called from the checking goroutines: in
	// order for one target, concurrently for different ones; it must not
	// block for long.
	OnChange func(Decision)
	// Logger logs state changes; zap.NewNop when nil.
	Logger *zap.Logger
}

// Checker follows, for each target, whether the management cluster lets
// the client use it. It is safe for concurrent use. A nil *Checker, what
// NewForConfig returns for a configuration without a platform section,
// allows every target: see Decision.
type Checker struct {
	reviews  authorizationv1client.SubjectAccessReviewInterface
	opts     Options
	log      *zap.Logger
	identity string
	ids      []string // sorted
	targets  map[string]*target

	mu      sync.Mutex
	pending int           // targets still Pending
	first   chan struct{} // closed when pending reaches 0
	// failing is true after a check failed and until one succeeds; back
	// is closed then, to wake the other targets' backoffs.
	failing bool
	back    chan struct{}
	subs    map[*subscription]struct{}
}

// target is one target's check. d is guarded by Checker.mu.
type target struct {
	id, name, project string
	recheck           chan struct{} // one pending Recheck
	d                 Decision
}

// New returns a Checker that asks by SubjectAccessReview through reviews
// (a clientset's AuthorizationV1()). Every target starts Pending; Run checks
// them.
func New(reviews authorizationv1client.SubjectAccessReviewsGetter, opts Options) *Checker {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = reconnect.DefaultInitialInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = opts.Interval
	}
	if opts.MinRecheckInterval <= 0 {
		opts.MinRecheckInterval = DefaultMinRecheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	// Default fills in the targets' projects as the configuration means
	// them.
	cfg := config.Config{Client: opts.Client, Targets: slices.Clone(opts.Targets)}
	cfg.Default()
	c := &Checker{
		reviews:  reviews.SubjectAccessReviews(),
		opts:     opts,
		log:      opts.Logger,
		identity: cfg.Client.Identity(),
		targets:  map[string]*target{},
		first:    make(chan struct{}),
		back:     make(chan struct{}),
		subs:     map[*subscription]struct{}{},
	}
	now := time.Now()
	for _, t := range cfg.Targets {
		id := targetID(t.Project, t.Name)
		if _, dup := c.targets[id]; dup {
			continue
		}
		c.targets[id] = &target{
			id: id, name: t.Name, project: t.Project,
			recheck: make(chan struct{}, 1),
			d: Decision{
				Target: id, Name: t.Name, Project: t.Project, Identity: c.identity,
				State: Pending, Since: now, Reason: "not checked yet",
			},
		}
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	c.pending = len(c.ids)
	if c.pending == 0 {
		close(c.first)
	}
	return c
}

// NewForConfig returns the Checker of cfg: the client's identity, every
// target cfg's group/versions route to, and a client of the management
// cluster from cfg.Platform.Kubeconfig, or from base when it is not nil
// (tests and the dev environment pass one). opts.Client and opts.Targets,
// when set, win over cfg's. Without a platform section it returns nil, nil:
// a nil *Checker allows every target.
func NewForConfig(cfg *config.Config, base *rest.Config, opts Options) (*Checker, error) {
	if cfg.Platform == nil {
		return nil, nil
	}
	rc := base
	if rc == nil {
		var err error
		if rc, err = clientcmd.BuildConfigFromFlags("", cfg.Platform.Kubeconfig); err != nil {
			return nil, fmt.Errorf("platform: loading kubeconfig %s: %w", cfg.Platform.Kubeconfig, err)
		}
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "crproxy/platform-check"
	if rc.Dial == nil {
		rc.Dial = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if rc.QPS == 0 {
		// One review per target and interval, more on rechecks: client-go's
		// default of 5 per second would delay them with many targets.
		rc.QPS, rc.Burst = 50, 100
	}
	client, err := authorizationv1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	if opts.Client.Name == "" {
		opts.Client = cfg.Client
	}
	if opts.Targets == nil {
		for _, gv := range cfg.GroupVersions() {
			opts.Targets = append(opts.Targets, gv.Target)
		}
	}
	return New(client, opts), nil
}

// targetID is the ID of a target: "<project>/<name>", as mirror.TargetID.
func targetID(project, name string) string { return project + "/" + name }

// Targets returns the IDs of the checked targets, sorted.
func (c *Checker) Targets() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.ids)
}

// Decision returns the current decision on the target with ID id
// ("<project>/<name>"). An ID that is not among the checked targets is
// Denied. A nil Checker allows everything: it answers Allowed for every
// ID.
func (c *Checker) Decision(id string) Decision {
	project, name, _ := strings.Cut(id, "/")
	if c == nil {
		return Decision{Target: id, Name: name, Project: project, State: Allowed, Allowed: true, Reason: "crproxy has no platform section: nothing is checked"}
	}
	t, ok := c.targets[id]
	if !ok {
		return Decision{Target: id, Name: name, Project: project, Identity: c.identity, State: Denied, Reason: "not a target crproxy checks"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return t.d
}

// Decisions returns the decisions on every target, sorted by target ID.
func (c *Checker) Decisions() []Decision {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Decision, 0, len(c.ids))
	for _, id := range c.ids {
		out = append(out, c.targets[id].d)
	}
	return out
}

// WaitFirst waits until every target has left Pending (Run has checked each
// once, answered or not) and returns nil, or returns ctx's error when ctx
// ends first. It returns at once on a nil Checker.
func (c *Checker) WaitFirst(ctx context.Context) error {
	if c == nil {
		return nil
	}
	select {
	case <-c.first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Recheck asks for a check of the target with ID id soon: right away, or
// MinRecheckInterval after the start of its last check, whichever is later.
// Call it when the target answers 403: the permission may have been
// revoked. It never blocks and calls coalesce: any number of them while a
// check waits or runs make one check after it. Unknown IDs are ignored.
func (c *Checker) Recheck(id string) {
	if c == nil {
		return
	}
	t, ok := c.targets[id]
	if !ok {
		return
	}
	select {
	case t.recheck <- struct{}{}:
	default:
	}
}

// Run checks every target until ctx ends: each every Interval, by the
// backoff while the management cluster fails, and as Recheck asks. Call it
// once. It returns at once on a nil Checker.
func (c *Checker) Run(ctx context.Context) {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for _, id := range c.ids {
		t := c.targets[id]
		wg.Go(func() { c.follow(ctx, t) })
	}
	wg.Wait()
}

// follow is one target's loop.
func (c *Checker) follow(ctx context.Context, t *target) {
	b := c.newBackoff()
	for {
		// This check answers every Recheck so far.
		select {
		case <-t.recheck:
		default:
		}
		start := time.Now()
		answered := c.check(ctx, t)
		if ctx.Err() != nil {
			return
		}
		wait, back := c.opts.Interval, (<-chan struct{})(nil)
		if answered {
			b.Reset()
		} else {
			wait, back = b.NextBackOff(), c.backChannel()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-back:
			timer.Stop()
		case <-t.recheck:
			timer.Stop()
			if !sleep(ctx, time.Until(start.Add(c.opts.MinRecheckInterval))) {
				return
			}
		}
	}
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// newBackoff is one target's retry schedule while the management cluster
// fails: the same as for a target (reconnect.Backoff).
func (c *Checker) newBackoff() *backoff.ExponentialBackOff {
	return reconnect.Backoff(c.opts.InitialBackoff, c.opts.MaxBackoff)
}

// backChannel is closed when the management cluster next answers a check
// after failing one.
func (c *Checker) backChannel() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.back
}

// check asks the management cluster about t once and records the outcome;
// it reports whether the management cluster answered. A check cut short by
// ctx's end records nothing.
func (c *Checker) check(ctx context.Context, t *target) bool {
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	review, err := c.reviews.Create(rctx, NewReview(c.identity, t.name, t.project), metav1.CreateOptions{})
	if ctx.Err() != nil {
		return false
	}
	if err == nil && review == nil {
		err = errors.New("the SubjectAccessReview came back empty")
	}
	now := time.Now()
	if err != nil {
		c.record(t, func(d *Decision) {
			d.State = Unknown
			d.Reason = describe(err)
			d.LastError = err.Error()
		}, now, false)
		return false
	}
	allowed, reason := verdict(review.Status)
	c.record(t, func(d *Decision) {
		d.State = Denied
		if allowed {
			d.State = Allowed
		}
		d.Allowed = allowed
		d.Answered = now
		d.Reason = reason
		d.LastError = ""
	}, now, true)
	return true
}

// record applies an outcome to t's decision and tells about a change of
// State: log, OnChange and subscribers.
func (c *Checker) record(t *target, apply func(*Decision), now time.Time, answered bool) {
	c.mu.Lock()
	old := t.d
	apply(&t.d)
	t.d.Checked = now
	changed := t.d.State != old.State
	if changed {
		t.d.Since = now
	}
	if old.State == Pending {
		if c.pending--; c.pending == 0 {
			close(c.first)
		}
	}
	switch {
	case !answered:
		c.failing = true
	case c.failing:
		c.failing = false
		close(c.back)
		c.back = make(chan struct{})
	}
	d := t.d
	var subs []*subscription
	if changed {
		for s := range c.subs {
			subs = append(subs, s)
		}
	}
	c.mu.Unlock()

	if !changed {
		return
	}
	fields := []zap.Field{
		zap.String("target", d.Target), zap.String("identity", d.Identity),
		zap.String("from", string(old.State)), zap.String("to", string(d.State)),
	}
	if d.Reason != "" {
		fields = append(fields, zap.String("reason", d.Reason))
	}
	if d.LastError != "" {
		fields = append(fields, zap.String("error", d.LastError))
	}
	if d.State == Allowed {
		c.log.Info("platform check of target changed", fields...)
	} else {
		c.log.Warn("platform check of target changed", fields...)
	}
	if c.opts.OnChange != nil {
		c.opts.OnChange(d)
	}
	for _, s := range subs {
		s.notify(d.Target)
	}
}
