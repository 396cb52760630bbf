package writethrough

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// Namespaces answers whether a namespace exists in the client cluster (from
// an informer, asking the cluster when the informer does not know it yet)
// and creates namespaces that are missing at a target, once each.
type Namespaces struct {
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	lister   corev1listers.NamespaceLister
	informer cache.SharedIndexInformer

	mu sync.Mutex
	// atTarget holds "<target ID>/<namespace>" for namespaces known to
	// exist at a target.
	atTarget map[string]bool
}

// NewNamespaces watches the client cluster's namespaces through client
// once Start is called.
func NewNamespaces(client kubernetes.Interface) *Namespaces {
	factory := informers.NewSharedInformerFactory(client, 0)
	nsInformer := factory.Core().V1().Namespaces()
	return &Namespaces{
		client:   client,
		factory:  factory,
		lister:   nsInformer.Lister(),
		informer: nsInformer.Informer(),
		atTarget: map[string]bool{},
	}
}

// Start starts the informer; it stops when ctx ends.
func (n *Namespaces) Start(ctx context.Context) { n.factory.Start(ctx.Done()) }

// checkClient answers 404 `namespaces "x" not found` when namespace does
// not exist in the client cluster, as a kube-apiserver answers for a
// native resource, and 403 for a create into a terminating namespace.
func (n *Namespaces) checkClient(ctx context.Context, gr schema.GroupResource, name, namespace string, creating bool) error {
	ns, err := n.lister.Get(namespace)
	if apierrors.IsNotFound(err) || !n.informer.HasSynced() {
		// The informer may not have seen a namespace created a moment ago.
		ns, err = n.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), namespace)
	}
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("checking namespace %s in the client cluster: %v", namespace, err))
	}
	if creating && ns.Status.Phase == corev1.NamespaceTerminating {
		e := apierrors.NewForbidden(gr, name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		e.ErrStatus.Details.Causes = append(e.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", namespace),
			Field:   "metadata.namespace",
		})
		return e
	}
	return nil
}

// ensureTarget makes sure namespace exists at t unless it is known to:
// it creates it when create is set (a namespace created by someone else in
// between is not an error), and otherwise, for a dry run that must not
// create it, refuses clearly when it is missing.
func (n *Namespaces) ensureTarget(ctx context.Context, t *mirror.Target, namespace string, create bool) error {
	key := t.ID + "/" + namespace
	n.mu.Lock()
	known := n.atTarget[key]
	n.mu.Unlock()
	if known {
		return nil
	}
	_, err := t.Namespace(ctx, namespace)
	switch {
	case apierrors.IsNotFound(err) && create:
		err = t.CreateNamespace(ctx, namespace)
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case apierrors.IsNotFound(err):
		e := apierrors.NewNotFound(corev1.Resource("namespaces"), namespace)
		e.ErrStatus.Message = fmt.Sprintf("namespace %s does not exist at the target yet: a dry run does not create it (the same write without dry run would)", namespace)
		return e
	}
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); ok {
			return err
		}
		doing := "checking"
		if create {
			doing = "ensuring"
		}
		e := apierrors.NewServiceUnavailable(fmt.Sprintf("target %s is unreachable, nothing was written: %s namespace %s: %s", t.ID, doing, namespace, mirror.DescribeFailure(err)))
		e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
		return e
	}
	n.mu.Lock()
	n.atTarget[key] = true
	n.mu.Unlock()
	return nil
}

// forgetTarget drops what ensureTarget remembered, after the target said
// the namespace is gone (someone deleted it there).
func (n *Namespaces) forgetTarget(t *mirror.Target, namespace string) {
	n.mu.Lock()
	delete(n.atTarget, t.ID+"/"+namespace)
	n.mu.Unlock()
}
