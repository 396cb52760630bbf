package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

const (
	// BarrierLabel marks a consistency barrier object at a target; its
	// value is a hash of the client identity whose barrier it is. The
	// mirror never stores such an object (of any client): its events only
	// move the cache's resourceVersion on.
	BarrierLabel = "crproxy.dev/consistency-barrier"
	// barrierAnnotation is what each barrier write changes: a new value,
	// so that every write is a real change with its own event.
	barrierAnnotation = "crproxy.dev/barrier"
	// BarrierNamespace holds the barrier objects of namespaced resources;
	// crproxy creates it at the target when it is missing.
	BarrierNamespace = "crproxy-consistency"
	// barrierRetry is how long a target's refusal of the barrier object
	// (schema, admission, RBAC) stands before crproxy tries again.
	barrierRetry = time.Minute
)

// errBarrierRefused wraps a target's refusal of the barrier object: the
// resource's consistent reads cannot be exact (see WaitConsistent).
type errBarrierRefused struct{ err error }

func (e errBarrierRefused) Error() string {
	return "the target refuses crproxy's consistency barrier object: " + e.err.Error()
}

func (e errBarrierRefused) Unwrap() error { return e.err }

// barrier is the per-resource state of the write barrier (see
// docs/design/read-path.md, "Consistent reads").
type barrier struct {
	seq     atomic.Uint64
	refusal atomic.Pointer[barrierRefusal] // nil: not refused
}

// barrierRefusal is the target's last refusal of the barrier object.
type barrierRefusal struct {
	at  time.Time
	err error
}

// IsBarrier reports whether an object carries BarrierLabel.
func IsBarrier(objLabels map[string]string) bool {
	_, ok := objLabels[BarrierLabel]
	return ok
}

// barrierID is a hash of the client identity: the value of BarrierLabel
// and the end of the barrier object's name, since an identity
// ("loft:vcluster:p-<project>:<name>") is not a valid name.
func (r *Resource) barrierID() string {
	sum := sha256.Sum256([]byte(r.Target.Identity))
	return hex.EncodeToString(sum[:8])
}

// barrierName is the name of this client identity's barrier object.
func (r *Resource) barrierName() string { return "crproxy-barrier-" + r.barrierID() }

func (r *Resource) barrierClient() dynamic.ResourceInterface {
	if r.API().Namespaced {
		return r.client().Namespace(BarrierNamespace)
	}
	return r.client()
}

// writeBarrier writes this identity's barrier object at the target and
// returns the write's resourceVersion W. The object is in the mirrored
// selection, so its event reaches the mirror's watch, and a watch delivers
// a resource's events in resourceVersion order: once the mirror holds W it
// holds every event of its selection that the target committed before the
// write. The first write creates the object (and its namespace).
func (r *Resource) writeBarrier(ctx context.Context) (uint64, error) {
	if last := r.barrier.refusal.Load(); last != nil && time.Since(last.at) < barrierRetry {
		return 0, last.err
	}
	u, err := r.patchBarrier(ctx)
	if apierrors.IsNotFound(err) {
		u, err = r.createBarrier(ctx)
	}
	// A refusal is an answer about the barrier object, not about the
	// identity (a 403 here is RBAC without create in BarrierNamespace):
	// the tracker is told of failures to reach the target only.
	if !refused(err) {
		r.Target.Connection.Observe(err)
	}
	if err != nil {
		if refused(err) {
			err = errBarrierRefused{err}
			r.barrier.refusal.Store(&barrierRefusal{at: time.Now(), err: err})
		}
		return 0, err
	}
	r.barrier.refusal.Store(nil)
	return parseResourceVersion(u.GetResourceVersion())
}

// nextBarrierValue is a value of barrierAnnotation no write used before.
func (r *Resource) nextBarrierValue() string {
	n := r.barrier.seq.Add(1)
	return strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.FormatUint(n, 10)
}

// patchBarrier writes the barrier object: a merge patch of its annotation
// to a new value.
func (r *Resource) patchBarrier(ctx context.Context) (*unstructured.Unstructured, error) {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, barrierAnnotation, r.nextBarrierValue())
	return r.barrierClient().Patch(ctx, r.barrierName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "crproxy"})
}

// refused tells a target's answer that retrying at once will not change
// (the object is invalid for the resource's schema, admission or RBAC
// denies it) from a failure to reach the target.
func refused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsUnsupportedMediaType(err)
}

// createBarrier creates the barrier object (and its namespace).
func (r *Resource) createBarrier(ctx context.Context) (*unstructured.Unstructured, error) {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(r.GVR.GroupVersion().String())
	obj.SetKind(r.API().Kind)
	obj.SetName(r.barrierName())
	if r.API().Namespaced {
		obj.SetNamespace(BarrierNamespace)
	}
	objLabels := map[string]string{BarrierLabel: r.barrierID()}
	for k, v := range r.ownerLabels {
		objLabels[k] = v
	}
	obj.SetLabels(objLabels)
	obj.SetAnnotations(map[string]string{barrierAnnotation: r.nextBarrierValue()})
	create := func() (*unstructured.Unstructured, error) {
		return r.barrierClient().Create(ctx, obj, metav1.CreateOptions{FieldManager: "crproxy"})
	}
	u, err := create()
	if apierrors.IsNotFound(err) && r.API().Namespaced {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: BarrierNamespace}}
		if _, nsErr := r.Target.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); nsErr != nil && !apierrors.IsAlreadyExists(nsErr) {
			return nil, nsErr
		}
		u, err = create()
	}
	if apierrors.IsAlreadyExists(err) {
		// Another replica created it meanwhile: write it.
		return r.patchBarrier(ctx)
	}
	return u, err
}
