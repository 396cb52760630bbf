package serve

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// replica is one campaigning crproxy as far as the election goes.
type replica struct {
	id      string
	cancel  context.CancelFunc
	leading atomic.Int32 // 1 while its lead runs
	terms   atomic.Int32 // how many times it started leading
	stopped chan struct{}
}

// TestElectionOneRegistrarAtATime runs two replicas' elections against a
// real apiserver: one leads; a stolen lease ends its term and it campaigns
// again; a replica that stops hands over to the other.
func TestElectionOneRegistrarAtATime(t *testing.T) {
	s := clustertest.NewAPIServer(t, "election")
	kube, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns, lease = "crproxy", "crproxy-registration"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(id string) *replica {
		r := &replica{id: id, stopped: make(chan struct{})}
		e := election{client: kube, namespace: ns, name: lease, identity: id,
			leaseDuration: 2 * time.Second, renewDeadline: time.Second, retryPeriod: 100 * time.Millisecond,
			log: zaptest.NewLogger(t).Named(id)}
		var rctx context.Context
		rctx, r.cancel = context.WithCancel(ctx)
		go func() {
			defer close(r.stopped)
			if err := e.whileLeader(rctx, func(ctx context.Context) {
				r.terms.Add(1)
				r.leading.Add(1)
				<-ctx.Done()
				r.leading.Add(-1)
			}); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}()
		return r
	}
	a, b := start("a"), start("b")
	defer a.cancel()
	defer b.cancel()
	leader := func() *replica {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			switch n := a.leading.Load() + b.leading.Load(); {
			case n > 1:
				t.Fatal("both replicas lead")
			case n == 1 && a.leading.Load() == 1:
				return a
			case n == 1:
				return b
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no replica leads")
		return nil
	}

	first := leader()
	time.Sleep(3 * time.Second) // several renewals: the leader stays, the other waits
	if got := leader(); got != first || a.terms.Load()+b.terms.Load() != 1 {
		t.Fatalf("leadership moved without cause: leader %s, terms a=%d b=%d", got.id, a.terms.Load(), b.terms.Load())
	}

	// Someone else takes the lease: the leader's term ends when it cannot
	// renew, and once the stolen lease expires a replica leads again.
	// The leader renews meanwhile: take it on the latest version.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := kube.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
		if err != nil {
			return err
		}
		intruder, two, now := "intruder", int32(2), metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime, l.Spec.AcquireTime = &intruder, &two, &now, &now
		_, err = kube.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's term to end", func() bool { return first.leading.Load() == 0 })
	leader()
	if terms := a.terms.Load() + b.terms.Load(); terms != 2 {
		t.Fatalf("after the stolen lease: %d terms, want 2", terms)
	}

	// The leader stops (a rollout): it releases the lease, so the other
	// takes over well before the lease would expire.
	current := leader()
	other := map[*replica]*replica{a: b, b: a}[current]
	current.cancel()
	<-current.stopped
	stoppedAt := time.Now()
	if leader() != other {
		t.Fatalf("%s still leads after stopping", current.id)
	}
	if took := time.Since(stoppedAt); took > time.Second {
		t.Errorf("handover took %s; a released lease should be taken within a retry period", took)
	}
	waitFor(t, current.id+"'s lead to end", func() bool { return current.leading.Load() == 0 })
	got, err := kube.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Spec.HolderIdentity; h == nil || *h != other.id {
		t.Errorf("lease holder %v, want %s", h, other.id)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
