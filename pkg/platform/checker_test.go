package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"github.com/crproxy/crproxy/pkg/config"
)

// TestReviewSent checks the SubjectAccessReview against the documentation's
// `kubectl auth can-i use virtualclusterinstances/<name> --as=<identity> -n
// p-<project>`, for a target of the client's project (named or defaulted) and
// one of another project.
func TestReviewSent(t *testing.T) {
	tests := []struct {
		name      string
		client    config.Client
		target    config.Target
		id        string
		identity  string
		namespace string
	}{
		{"same project", client, config.Target{Name: "target", Project: "default"}, "default/target", identity, "p-default"},
		{"project defaulted to the client's", config.Client{Name: "ci", Project: "team"}, config.Target{Name: "target"}, "team/target", "loft:vcluster:p-team:ci", "p-team"},
		{"client project defaulted", config.Client{Name: "client"}, config.Target{Name: "target"}, "default/target", identity, "p-default"},
		{"cross-project", client, config.Target{Name: "target", Project: "other-project"}, "other-project/target", identity, "p-other-project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlatformRBAC()
			c := startChecker(t, p, Options{Client: tt.client, Targets: []config.Target{tt.target}})
			if got := c.Targets(); !slices.Equal(got, []string{tt.id}) {
				t.Fatalf("Targets() = %v, want [%s]", got, tt.id)
			}
			want := authorizationv1.SubjectAccessReviewSpec{
				User:   tt.identity,
				Groups: []string{"system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: tt.namespace, Verb: "use", Group: "management.loft.sh", Resource: "virtualclusterinstances", Name: "target",
				},
			}
			if got := p.last().Spec; !reflect.DeepEqual(got, want) {
				t.Errorf("review spec\n%+v\nwant\n%+v", got, want)
			}
			d := c.Decision(tt.id)
			if d.State != Denied || d.Identity != tt.identity || d.Name != "target" || d.Project != strings.TrimPrefix(tt.namespace, "p-") {
				t.Errorf("decision %+v, want Denied for %s on %s", d, tt.identity, tt.id)
			}
		})
	}
}

// TestAllowedAndDenied checks the two answers, per target and per project:
// a grant in p-default does not cover the same name in p-other-project.
func TestAllowedAndDenied(t *testing.T) {
	p := newPlatformRBAC()
	p.allow(identity, "p-default", "target")
	p.allow("loft:vcluster:p-default:team-a", "p-other-project", "target")
	c := startChecker(t, p, Options{Targets: []config.Target{
		{Name: "target"}, {Name: "target", Project: "other-project"}, {Name: "target-b"},
		{Name: "target", Project: "default"}, // the first one again: checked once
	}})
	want := map[string]State{"default/target": Allowed, "other-project/target": Denied, "default/target-b": Denied}
	got := map[string]State{}
	for _, d := range c.Decisions() {
		got[d.Target] = d.State
		if d.Allowed != (d.State == Allowed) || d.Answered.IsZero() || d.Checked.IsZero() || d.Since.IsZero() || d.LastError != "" {
			t.Errorf("decision %+v: inconsistent fields", d)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if d := c.Decision("default/target"); d.Reason != "granted in the test" || !d.MayRead() || !d.MayWrite() {
		t.Errorf("allowed decision %+v", d)
	}
	if d := c.Decision("default/target-b"); d.MayRead() || d.MayWrite() {
		t.Errorf("denied decision %+v may read or write", d)
	}
	if n := p.count(); n != 3 {
		t.Errorf("%d reviews for 3 distinct targets", n)
	}
	if d := c.Decision("default/unknown"); d.State != Denied || d.Name != "unknown" || d.Project != "default" {
		t.Errorf("decision on an unchecked target: %+v, want Denied", d)
	}
}

// TestVerdict checks how review answers map to allowed.
func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		status  authorizationv1.SubjectAccessReviewStatus
		allowed bool
		reason  string
	}{
		{authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "RBAC: allowed"}, true, "RBAC: allowed"},
		{authorizationv1.SubjectAccessReviewStatus{}, false, ""},
		{authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "webhook says no"}, false, "webhook says no"},
		{authorizationv1.SubjectAccessReviewStatus{Allowed: true, Denied: true}, false, ""},
		{authorizationv1.SubjectAccessReviewStatus{Reason: "no binding", EvaluationError: "role not found"}, false, "no binding; evaluation error: role not found"},
	} {
		allowed, reason := verdict(tt.status)
		if allowed != tt.allowed || reason != tt.reason {
			t.Errorf("verdict(%+v) = %v, %q; want %v, %q", tt.status, allowed, reason, tt.allowed, tt.reason)
		}
	}
}

// refused is the error client-go returns when nothing listens at the
// management cluster's address.
var refused = &url.Error{Op: "Post", URL: "https://10.1.2.3:6443/apis/authorization.k8s.io/v1/subjectaccessreviews", Err: &net.OpError{
	Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6443},
	Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED},
}}

// TestUnknownKeepsLastAnswer: while checks fail, the state is Unknown and the
// last answer is kept, both ways; without an answer there is nothing to
// keep. The reason names no address, the last error does.
func TestUnknownKeepsLastAnswer(t *testing.T) {
	p := newPlatformRBAC()
	p.allow(identity, "p-default", "target")
	c := startChecker(t, p, Options{Interval: 20 * time.Millisecond, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Targets: []config.Target{{Name: "target"}, {Name: "denied"}}})
	allowedAt := c.Decision("default/target").Answered

	p.setFail(refused)
	eventually(t, 5*time.Second, inState(c, "default/target", Unknown))
	eventually(t, 5*time.Second, inState(c, "default/denied", Unknown))
	d := c.Decision("default/target")
	if !d.Allowed || !d.Answered.Equal(allowedAt) || !d.MayRead() || d.MayWrite() {
		t.Errorf("unknown after allowed: %+v, want reads on the last answer and no writes", d)
	}
	if want := "the connection to the platform's management cluster was refused"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
	if !strings.Contains(d.LastError, "10.1.2.3") {
		t.Errorf("last error %q lost the full error", d.LastError)
	}
	if d := c.Decision("default/denied"); d.Allowed || d.MayRead() || d.Answered.IsZero() {
		t.Errorf("unknown after denied: %+v, want no reads", d)
	}

	p.setFail(nil)
	eventually(t, 5*time.Second, inState(c, "default/target", Allowed))
	eventually(t, 5*time.Second, inState(c, "default/denied", Denied))
	if d := c.Decision("default/target"); d.LastError != "" || d.Reason != "granted in the test" {
		t.Errorf("back: %+v, want the answer's reason and no error", d)
	}
}

// TestUnknownWithoutAnswer: a management cluster that fails from the start
// leaves nothing to go by.
func TestUnknownWithoutAnswer(t *testing.T) {
	p := newPlatformRBAC()
	p.allow(identity, "p-default", "target")
	p.setFail(apierrors.NewInternalError(errors.New("etcd is gone")))
	c := startChecker(t, p, Options{Targets: []config.Target{{Name: "target"}}})
	d := c.Decision("default/target")
	if d.State != Unknown || d.Allowed || !d.Answered.IsZero() || d.MayRead() {
		t.Errorf("decision %+v, want Unknown without an answer", d)
	}
	if want := "the platform's management cluster answered 500 InternalError"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

// TestDescribe checks the address-free wording of failures.
func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{refused, "the connection to the platform's management cluster was refused"},
		{context.DeadlineExceeded, "did not answer in time"},
		{&url.Error{Op: "Post", URL: "https://platform.internal", Err: &net.DNSError{Name: "platform.internal", Err: "no such host"}}, "name did not resolve"},
		{apierrors.NewForbidden(authorizationv1.Resource("subjectaccessreviews"), "", errors.New("no")), "needs create on subjectaccessreviews.authorization.k8s.io"},
		{apierrors.NewUnauthorized("who are you"), "did not accept the credentials"},
		{apierrors.NewServiceUnavailable("later"), "answered 503 ServiceUnavailable"},
		{errors.New("Post https://10.1.2.3:6443: EOF"), "the connection to the platform's management cluster failed"},
	} {
		got := describe(tt.err)
		if !strings.Contains(got, tt.want) {
			t.Errorf("describe(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
		if strings.Contains(got, "10.1.2.3") || strings.Contains(got, "platform.internal") {
			t.Errorf("describe(%v) = %q names an address", tt.err, got)
		}
	}
}

// TestGrantAndRevoke: a grant is seen within the interval, and so is a
// revocation; every change of state is told, in order, to OnChange and to
// subscribers.
func TestGrantAndRevoke(t *testing.T) {
	p := newPlatformRBAC()
	var mu sync.Mutex
	var changes []string
	c := startChecker(t, p, Options{Interval: 20 * time.Millisecond, Targets: []config.Target{{Name: "target", Project: "other-project"}},
		OnChange: func(d Decision) {
			mu.Lock()
			changes = append(changes, d.Target+" "+string(d.State))
			mu.Unlock()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := c.Subscribe(ctx)
	id := "other-project/target"
	if d := c.Decision(id); d.State != Denied {
		t.Fatalf("before the grant: %+v", d)
	}

	p.allow(identity, "p-other-project", "target")
	eventually(t, 2*time.Second, inState(c, id, Allowed))
	if got := receive(t, sub); got != id {
		t.Errorf("subscriber got %q, want %q", got, id)
	}
	p.revoke(identity, "p-other-project", "target")
	eventually(t, 2*time.Second, inState(c, id, Denied))
	if got := receive(t, sub); got != id {
		t.Errorf("subscriber got %q, want %q", got, id)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{id + " Denied", id + " Allowed", id + " Denied"}
	if !slices.Equal(changes, want) {
		t.Errorf("OnChange calls %v, want %v", changes, want)
	}
}

// receive waits for the next ID of a subscription.
func receive(t *testing.T, sub <-chan string) string {
	t.Helper()
	select {
	case id := <-sub:
		return id
	case <-time.After(5 * time.Second):
		t.Fatal("no change told to the subscriber")
		return ""
	}
}

// TestSubscribeCoalesces: changes to a target pile up as one pending ID
// while the subscriber does not read, and the channel closes with its
// context.
func TestSubscribeCoalesces(t *testing.T) {
	p := newPlatformRBAC()
	c := New(p.clientset().AuthorizationV1(), Options{Client: client, Targets: []config.Target{{Name: "a"}, {Name: "b"}}})
	ctx, cancel := context.WithCancel(context.Background())
	sub := c.Subscribe(ctx)
	ta, tb := c.targets["default/a"], c.targets["default/b"]
	for i := range 10 {
		p.setFail(nil)
		if i%2 == 1 {
			p.setFail(refused)
		}
		c.check(context.Background(), ta) // Pending, Denied, Unknown, Denied, ...
	}
	c.check(context.Background(), tb)
	// a's first change may be on its way while the others pile up behind
	// it: a comes once or twice, then b.
	got := []string{receive(t, sub)}
	for quiet := false; !quiet; {
		select {
		case id := <-sub:
			got = append(got, id)
		case <-time.After(50 * time.Millisecond):
			quiet = true
		}
	}
	if !slices.Equal(got, []string{"default/a", "default/b"}) && !slices.Equal(got, []string{"default/a", "default/a", "default/b"}) {
		t.Errorf("received %v, want a (once or twice), then b", got)
	}
	cancel()
	for range sub {
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) != 0 {
		t.Errorf("%d subscriptions left after their contexts ended", len(c.subs))
	}
}

// TestRecheckCoalesces: Recheck checks at once, many calls make one check,
// no two checks come closer than MinRecheckInterval, and a Recheck during a
// check makes one more after it.
func TestRecheckCoalesces(t *testing.T) {
	p := newPlatformRBAC()
	p.allow(identity, "p-default", "target")
	const minInterval = 100 * time.Millisecond
	c := startChecker(t, p, Options{Interval: time.Hour, MinRecheckInterval: minInterval, Targets: []config.Target{{Name: "target"}}})
	if n := p.count(); n != 1 {
		t.Fatalf("%d reviews after the first check", n)
	}

	// A revocation, found by the 403s it causes.
	p.revoke(identity, "p-default", "target")
	start := time.Now()
	for range 1000 {
		c.Recheck("default/target")
		c.Recheck("default/unknown") // ignored
	}
	eventually(t, 2*time.Second, inState(c, "default/target", Denied))
	time.Sleep(3 * minInterval)
	if n := p.count(); n != 2 {
		t.Errorf("%d reviews after 1000 Rechecks, want 2 in all", n)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("the recheck took %s", elapsed)
	}

	// Rechecks while a check is on its way make one check after it.
	block := make(chan struct{})
	p.mu.Lock()
	p.block = block
	p.mu.Unlock()
	c.Recheck("default/target")
	eventually(t, 2*time.Second, func() string {
		if p.count() != 3 {
			return "the third review did not start"
		}
		return ""
	})
	for range 100 {
		c.Recheck("default/target")
	}
	p.mu.Lock()
	p.block = nil
	p.mu.Unlock()
	close(block)
	eventually(t, 2*time.Second, func() string {
		if n := p.count(); n != 4 {
			return fmt.Sprintf("%d reviews, want a fourth after the Rechecks during the third", n)
		}
		return ""
	})
	time.Sleep(3 * minInterval)
	if n := p.count(); n != 4 {
		t.Errorf("%d reviews, want 4", n)
	}
}

// TestBackoffWhileFailing: while the management cluster fails, checks come
// by the backoff, sooner than Interval, and a target that sees it answer
// again wakes the others.
func TestBackoffWhileFailing(t *testing.T) {
	p := newPlatformRBAC()
	p.allow(identity, "p-default", "a")
	c := startChecker(t, p, Options{Interval: time.Hour, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MinRecheckInterval: time.Millisecond,
		Targets: []config.Target{{Name: "a"}}})
	p.setFail(refused)
	c.Recheck("default/a")
	eventually(t, 2*time.Second, inState(c, "default/a", Unknown))
	n := p.count()
	eventually(t, 2*time.Second, func() string {
		if p.count() < n+5 {
			return "fewer than 5 retries while failing"
		}
		return ""
	})
	p.setFail(nil)
	eventually(t, time.Second, inState(c, "default/a", Allowed))
	// Answered: back to the interval.
	time.Sleep(50 * time.Millisecond)
	n = p.count()
	time.Sleep(100 * time.Millisecond)
	if p.count() != n {
		t.Errorf("checks go on by the backoff after an answer")
	}
}

// slowReviews answers no review before its context ends.
type slowReviews struct {
	authorizationv1client.SubjectAccessReviewInterface
}

func (slowReviews) Create(ctx context.Context, _ *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestTimeout: a review that hangs is cut at Timeout and counts as a
// failure.
func TestTimeout(t *testing.T) {
	p := newPlatformRBAC()
	c := New(p.clientset().AuthorizationV1(), Options{Client: client, Timeout: 20 * time.Millisecond, Targets: []config.Target{{Name: "target"}}})
	// The fake ignores contexts; client-go's requests fail with the
	// context's error.
	c.reviews = slowReviews{c.reviews}
	c.check(context.Background(), c.targets["default/target"])
	if d := c.Decision("default/target"); d.State != Unknown || !strings.Contains(d.Reason, "did not answer in time") {
		t.Errorf("decision %+v, want Unknown: did not answer in time", d)
	}
}

// TestWaitFirst: WaitFirst waits for every target's first check, and gives
// up with its context.
func TestWaitFirst(t *testing.T) {
	p := newPlatformRBAC()
	c := New(p.clientset().AuthorizationV1(), Options{Client: client, Targets: []config.Target{{Name: "a"}, {Name: "b"}}})
	for _, d := range c.Decisions() {
		if d.State != Pending || d.MayRead() || d.MayWrite() {
			t.Errorf("before Run: %+v, want Pending", d)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.WaitFirst(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFirst without Run: %v", err)
	}
	c.check(context.Background(), c.targets["default/a"])
	if err := c.WaitFirst(ctx); err == nil {
		t.Error("WaitFirst returned with b still Pending")
	}
	c.check(context.Background(), c.targets["default/b"])
	if err := c.WaitFirst(context.Background()); err != nil {
		t.Errorf("WaitFirst after both checks: %v", err)
	}
	if err := New(p.clientset().AuthorizationV1(), Options{Client: client}).WaitFirst(context.Background()); err != nil {
		t.Errorf("WaitFirst without targets: %v", err)
	}
}

// TestNilChecker: no platform section, nothing checked, everything allowed.
func TestNilChecker(t *testing.T) {
	var c *Checker
	d := c.Decision("default/target")
	if d.State != Allowed || !d.MayRead() || !d.MayWrite() || d.Name != "target" || d.Project != "default" {
		t.Errorf("nil checker decision %+v", d)
	}
	c.Recheck("default/target")
	c.Run(context.Background())
	if err := c.WaitFirst(context.Background()); err != nil {
		t.Error(err)
	}
	if c.Decisions() != nil || c.Targets() != nil {
		t.Error("nil checker lists targets")
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub := c.Subscribe(ctx)
	cancel()
	for range sub {
		t.Error("nil checker told of a change")
	}
}
