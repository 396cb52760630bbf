package platform

import (
	"context"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/crproxy/crproxy/pkg/config"
)

// platformRBAC is a fake management cluster's authorizer: the grants of
// "use" on VirtualClusterInstances, and a failure that stands for the
// cluster being unreachable.
type platformRBAC struct {
	mu      sync.Mutex
	grants  map[grant]bool
	fail    error
	reviews []authorizationv1.SubjectAccessReview
	// block, when set, holds every review until it is closed.
	block chan struct{}
}

// grant is one (user, namespace, name) allowed to use a VirtualClusterInstance.
type grant struct{ user, namespace, name string }

func newPlatformRBAC() *platformRBAC { return &platformRBAC{grants: map[grant]bool{}} }

func (p *platformRBAC) allow(user, namespace, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.grants[grant{user, namespace, name}] = true
}

func (p *platformRBAC) revoke(user, namespace, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.grants, grant{user, namespace, name})
}

func (p *platformRBAC) setFail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = err
}

// count is the number of reviews received so far.
func (p *platformRBAC) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reviews)
}

func (p *platformRBAC) last() authorizationv1.SubjectAccessReview {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reviews[len(p.reviews)-1]
}

// clientset is a fake clientset whose SubjectAccessReviews p answers the
// way RBAC would: allowed when granted, else not allowed with no reason.
func (p *platformRBAC) clientset() *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		p.mu.Lock()
		p.reviews = append(p.reviews, *review)
		block, fail := p.block, p.fail
		attrs := review.Spec.ResourceAttributes
		allowed := attrs != nil && attrs.Group == Group && attrs.Resource == Resource && attrs.Verb == Verb &&
			p.grants[grant{review.Spec.User, attrs.Namespace, attrs.Name}]
		p.mu.Unlock()
		if block != nil {
			<-block
		}
		if fail != nil {
			return true, nil, fail
		}
		review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: allowed}
		if allowed {
			review.Status.Reason = "granted in the test"
		}
		return true, review, nil
	})
	return cs
}

// client is the documentation's client, loft:vcluster:p-default:client.
var client = config.Client{Project: "default", Name: "client"}

const identity = "loft:vcluster:p-default:client"

// startChecker runs a Checker on p until the test ends.
func startChecker(t *testing.T, p *platformRBAC, opts Options) *Checker {
	t.Helper()
	if opts.Client.Name == "" {
		opts.Client = client
	}
	c := New(p.clientset().AuthorizationV1(), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := c.WaitFirst(wait); err != nil {
		t.Fatalf("WaitFirst: %v", err)
	}
	return c
}

// eventually retries check every 5 ms until it returns "" and fails the
// test with its last answer after within.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, problem)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inState is a check for eventually: "" when the target id is in state.
func inState(c *Checker, id string, state State) func() string {
	return func() string {
		if d := c.Decision(id); d.State != state {
			return "target " + id + " is " + string(d.State) + " (" + d.Reason + "), want " + string(state)
		}
		return ""
	}
}
