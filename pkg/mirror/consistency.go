package mirror

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/pkg/reconnect"
	"github.com/crproxy/crproxy/pkg/store"
)

// Read consistency, in one place. Which read waits for what
// (docs/design/read-path.md, "Consistent reads"):
//
//   - resourceVersion "" (consistent): the answer reflects every write the
//     target acknowledged before the read began, by any writer. A GET by
//     name asks the target for the object (getConsistent); a LIST, a WATCH
//     and a GET among many concurrent reads ask the target for the
//     selection's state and wait until the mirror reflects it
//     (waitConsistent, selection_state.go). Nothing is written.
//   - resourceVersion "0": the mirror's state, at once.
//   - resourceVersion N (NotOlderThan): the mirror once it holds N, asking
//     the target for a bookmark when its watch does not bring N within
//     progressAfter (progress.go); 504 "Too large resource version" after
//     notOlderThanTimeout.
//
// Every read first waits, bounded, for a resource never mirrored yet
// (waitSynced). When the target is unreachable or refuses the identity,
// consistent reads are answered from the mirror at once with a Warning
// naming the target (warnIfStale); when the target's state cannot be
// learned, likewise.
const (
	// syncTimeout is how long a read waits for a resource that was never
	// mirrored (first start, target not answered yet) before 503.
	syncTimeout = 10 * time.Second
	// notOlderThanTimeout is how long a read for a resourceVersion the
	// mirror does not hold yet waits, as the kube-apiserver's cache does.
	notOlderThanTimeout = 3 * time.Second
	// reflectTimeout bounds the wait for the mirror to reflect the state
	// the target listed: the target committed it, so only a broken or
	// lagging watch delays it.
	reflectTimeout = 10 * time.Second
	// targetReadTimeout bounds one request for the target's state.
	targetReadTimeout = 10 * time.Second
	// getAtTargetMaxReads is how many consistent reads of a resource may be
	// under way for a GET by name to ask the target itself; past it, GETs
	// of a small selection (sharedStateMaxObjects) share the selection's
	// state, which then costs the target less than one GET each. A cost
	// policy only: both ways are exact.
	getAtTargetMaxReads = 2
	// sharedStateMaxObjects is the largest selection whose state GETs
	// share: listing the metadata of more objects costs the target more
	// than the GETs it would save (one GET reads one key from etcd).
	sharedStateMaxObjects = 500
)

// Freshness is what a read asks of the mirror's state: its resourceVersion
// parameter.
type Freshness struct {
	// Consistent is resourceVersion "".
	Consistent bool
	// NotOlderThan is N of resourceVersion N; 0 with Consistent unset is
	// resourceVersion "0", any state.
	NotOlderThan uint64
}

// Scope is the part of the mirrored selection a read answers from: a
// consistent read proves the mirror current for its scope only, so the
// target lists only that part.
type Scope struct {
	// Namespace is the read's namespace ("" for all).
	Namespace string
	// LabelSelector and FieldSelector are the read's selectors as its
	// query gave them ("" for none); the target reads the same syntax.
	LabelSelector, FieldSelector string
	// Matches reports whether a mirrored object is in the scope's
	// selectors (nil: every object of the namespace).
	Matches func(*store.Object) bool
}

// key tells scopes apart for sharing the target's state.
func (s Scope) key() string { return s.Namespace + "\x00" + s.LabelSelector + "\x00" + s.FieldSelector }

// waitFresh waits until the mirror may answer a read of the given
// freshness in scope; see the rules above.
func (r *Resource) waitFresh(ctx context.Context, f Freshness, scope Scope) error {
	if err := r.waitSynced(ctx); err != nil {
		return err
	}
	switch {
	case f.Consistent:
		if _, down := r.Target.Connection.Down(); down {
			return nil // answered from the mirror, warned (warnIfStale)
		}
		r.inflight.Add(1)
		defer r.inflight.Add(-1)
		return r.degrade(ctx, r.waitConsistent(ctx, scope))
	case f.NotOlderThan == 0:
		return nil
	default:
		return r.waitNotOlderThan(ctx, f.NotOlderThan)
	}
}

// degrade turns the failure of a consistent read's wait into its answer:
// a timeout when the caller gave up, else the mirror's state with a
// Warning saying the target could not be asked.
func (r *Resource) degrade(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return apierrors.NewTimeoutError("request ended before the mirror caught up", 1)
	}
	if !r.warnIfStale(ctx) {
		warning.AddWarning(ctx, "crproxy", fmt.Sprintf("target %s did not answer a consistent read (%s); serving cached data at resourceVersion %d", r.Target.ID, DescribeFailure(err), r.Cache.ResourceVersion()))
	}
	return nil
}

// waitConsistent returns once the mirror holds every event in scope that
// the target committed before the call: it learns the scope's state at
// the target (one metadata list shared by the callers of the same scope
// that arrive while another runs, sharedCall) and waits until the mirror
// reflects it. It returns an error when the target cannot be asked or the
// mirror does not catch up.
func (r *Resource) waitConsistent(ctx context.Context, scope Scope) error {
	state, err := r.selections.call(scope, r.listSelection).Do(ctx)
	if err != nil {
		return err
	}
	return r.waitReflected(ctx, state, scope)
}

// getConsistent answers a consistent GET by name: the object as the target
// holds it now, or a 404 NotFound. It asks the target for the object (a
// consistent GET there reads etcd) and answers from the mirror when that
// holds the same version; with many consistent reads under way of a small
// selection, it waits for the selection's shared state instead and reads
// the mirror.
func (r *Resource) getConsistent(ctx context.Context, namespace, name string) (*store.Object, error) {
	if err := r.waitSynced(ctx); err != nil {
		return nil, err
	}
	n := r.inflight.Add(1)
	defer r.inflight.Add(-1)
	if _, down := r.Target.Connection.Down(); !down {
		if n > getAtTargetMaxReads && r.Cache.Snapshot().Len() <= sharedStateMaxObjects {
			if err := r.degrade(ctx, r.waitConsistent(ctx, Scope{})); err != nil {
				return nil, err
			}
		} else {
			o, found, err := r.getAtTarget(ctx, namespace, name)
			switch {
			case err != nil:
				if err := r.degrade(ctx, err); err != nil {
					return nil, err
				}
			case !found:
				return nil, apierrors.NewNotFound(r.GVR.GroupResource(), name)
			default:
				return o, nil
			}
		}
	}
	o, _, ok := r.Cache.Get(namespace, name)
	if !ok {
		return nil, apierrors.NewNotFound(r.GVR.GroupResource(), name)
	}
	return o, nil
}

// getAtTarget reads the object at the target: the mirror's copy when it
// holds the version the target answered (the same bytes, which need no
// decoding, or the same UID at a version as new), else the target's.
// found is false when the target has none or it is outside the mirrored
// selection.
func (r *Resource) getAtTarget(ctx context.Context, namespace, name string) (o *store.Object, found bool, err error) {
	code, body, err := r.getFromTarget(ctx, namespace, name)
	if err != nil {
		return nil, false, err
	}
	body = ViewJSON(body, r.Target.Passthrough)
	m, _, mirrored := r.Cache.Get(namespace, name)
	if code == http.StatusOK && mirrored && bytes.Equal(m.JSON, body) {
		return m, true, nil
	}
	o, err = r.targetObject(code, body, name)
	switch {
	case err != nil || o == nil:
		return nil, false, err
	case !r.Selector.Matches(labels.Set(o.Labels)):
		return nil, false, nil
	case mirrored && m.UID == o.UID && m.ResourceVersion >= o.ResourceVersion:
		return m, true, nil
	}
	return o, true, nil
}

// ReadAtTarget GETs the object namespace/name at the target
// (resourceVersion unset: from etcd) as the client identity, whatever the
// mirrored selection: the object in the client's view, nil when the
// target holds none, the target's error when its answer does not tell
// (TargetObject), or the transport's when it gave none (a failure is
// recorded on the target's tracker unless the caller gave up).
func (r *Resource) ReadAtTarget(ctx context.Context, namespace, name string) (*store.Object, error) {
	code, body, err := r.getFromTarget(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return r.TargetObject(code, body, name)
}

// getFromTarget GETs the object namespace/name at the target and returns
// its answer as sent, whatever the code; the error is Send's.
func (r *Resource) getFromTarget(ctx context.Context, namespace, name string) (code int, body []byte, err error) {
	a, err := r.Target.Send(ctx, Call{Method: http.MethodGet, Path: ObjectPath(r, namespace, name), Timeout: targetReadTimeout})
	if err != nil {
		return 0, nil, err
	}
	return a.Code, a.Body, nil
}

// ObjectPath is the API path of the object namespace/name of res.
func ObjectPath(res *Resource, namespace, name string) string {
	p := "/apis/" + res.GVR.Group + "/" + res.GVR.Version
	if res.GVR.Group == "" {
		p = "/api/" + res.GVR.Version
	}
	if namespace != "" {
		p = path.Join(p, "namespaces", namespace)
	}
	return path.Join(p, res.GVR.Resource, name)
}

// waitNotOlderThan waits, bounded as the kube-apiserver's cache does, until
// the mirror holds rv, asking the target for its progress when the watch
// does not bring rv at once (progress.go); then it answers the
// apiserver's "too large resource version" (504 with Retry-After).
func (r *Resource) waitNotOlderThan(ctx context.Context, rv uint64) error {
	wait, cancel := context.WithTimeout(ctx, notOlderThanTimeout)
	defer cancel()
	if r.Cache.ResourceVersion() < rv {
		first, stop := context.WithTimeout(wait, progressAfter)
		err := r.Cache.WaitForResourceVersion(first, rv)
		stop()
		if err != nil && wait.Err() == nil {
			r.requestProgress(wait, rv)
		}
	}
	if err := r.Cache.WaitForResourceVersion(wait, rv); err != nil {
		return storage.NewTooLargeResourceVersionError(rv, r.Cache.ResourceVersion(), 1)
	}
	return nil
}

// waitSynced waits, bounded, for a resource that has never been mirrored;
// then it answers 503 with Retry-After.
func (r *Resource) waitSynced(ctx context.Context) error {
	if r.Cache.Synced() {
		return nil
	}
	notYet := func() error {
		err := apierrors.NewServiceUnavailable(fmt.Sprintf("%s has not been mirrored from target %s yet", r.GVR.GroupResource(), r.Target.ID))
		err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 5}
		return err
	}
	wait, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !r.Cache.Synced() {
		if _, down := r.Target.Connection.Down(); down {
			// Nothing to wait for until the target is back.
			return notYet()
		}
		select {
		case <-wait.Done():
			return notYet()
		case <-tick.C:
		}
	}
	return nil
}

// warnIfStale adds the Warning of a read served while the target is
// unreachable or refuses the identity, and reports whether it did.
func (r *Resource) warnIfStale(ctx context.Context) bool {
	st := r.Target.Connection.Status()
	var what string
	switch st.State {
	case reconnect.Unreachable:
		what = "unreachable"
	case reconnect.Forbidden:
		what = "refusing this client's identity"
	default:
		return false
	}
	warning.AddWarning(ctx, "crproxy", fmt.Sprintf("target %s %s since %s; serving cached data at resourceVersion %d",
		r.Target.ID, what, st.Since.UTC().Format(time.RFC3339), r.Cache.ResourceVersion()))
	return true
}
