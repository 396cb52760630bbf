package serve

import (
	"context"
	"os"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// election decides which of several crproxy replicas registers the
// APIServices. Every replica serves; only the registration has one writer,
// so replicas do not all rewrite the same objects every interval, and
// during a rollout that changes the certificate the old and new replicas do
// not flip the caBundle back and forth. Two leaders for a moment (a lease
// taken over from a partitioned replica) are harmless: they apply the same
// objects.
type election struct {
	client    kubernetes.Interface
	namespace string
	name      string
	identity  string
	// The timings of client-go's leader election; defaultElection uses
	// the kube-controller-manager's.
	leaseDuration, renewDeadline, retryPeriod time.Duration
	log                                       *zap.Logger
}

// defaultElection is the election of `serve --leader-elect`: the Lease
// <service-name>-registration in the Service's namespace, the
// kube-controller-manager's timings, and an identity that names the pod.
func defaultElection(client kubernetes.Interface, o *Options, log *zap.Logger) election {
	host, _ := os.Hostname() // the pod's name in a pod; only for people reading the Lease
	return election{
		client:        client,
		namespace:     o.ServiceNamespace,
		name:          o.ServiceName + "-registration",
		identity:      host + "_" + string(uuid.NewUUID()),
		leaseDuration: 15 * time.Second,
		renewDeadline: 10 * time.Second,
		retryPeriod:   2 * time.Second,
		log:           log,
	}
}

// whileLeader runs lead each time this replica becomes the leader, with a
// context that ends when it stops leading, and campaigns again after a
// loss, until ctx ends. A lost lease does not end the process, as it would
// for a controller: serving does not depend on it. The lease is released
// when ctx ends, so the next replica takes over at once in a rollout.
func (e election) whileLeader(ctx context.Context, lead func(context.Context)) error {
	for ctx.Err() == nil {
		done := make(chan struct{})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: e.namespace, Name: e.name},
				Client:     e.client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
			},
			LeaseDuration:   e.leaseDuration,
			RenewDeadline:   e.renewDeadline,
			RetryPeriod:     e.retryPeriod,
			ReleaseOnCancel: true,
			Name:            e.name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					defer close(done)
					e.log.Info("leading the registration", zap.String("lease", e.namespace+"/"+e.name), zap.String("identity", e.identity))
					lead(ctx)
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Run returns before ctx ends only after losing a lease it held,
		// so lead was started; wait for it to end before campaigning
		// again, so one process never runs two.
		<-done
		e.log.Warn("lost the registration lease; campaigning again", zap.String("lease", e.namespace+"/"+e.name))
	}
	return nil
}
