package writethrough

import (
	"context"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// lookup returns the object a named write addresses: from the mirror, or
// from the target when the mirror does not hold it (or fresh is set). It
// returns nil when the object does not exist, and the target's error when
// its answer does not tell (mirror.TargetObject: a 403 is such an answer).
func (w *Writer) lookup(ctx context.Context, req *Request, fresh bool) (*store.Object, error) {
	res := req.Resource
	if !fresh && !req.checkAtTarget {
		if o, _, ok := res.Cache.Get(req.Namespace, req.Name); ok {
			return o, nil
		}
	}
	// Every lookup comes before the write is sent or after the target
	// refused it: its failure leaves nothing written of this write (a
	// deletecollection carried out one by one says what it deleted
	// before: partialOutcome).
	o, err := res.ReadAtTarget(ctx, req.Namespace, req.Name)
	if err == nil {
		return o, nil
	}
	if _, answered := err.(apierrors.APIStatus); answered {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, callerGaveUp(res.Target, false)
	}
	return nil, transportError(res.Target, err, false)
}

// checkOwnership is the owned mode's rule for a named write: it returns
// the object when this client owns it, and 404 NotFound, exactly as for a
// missing object, when it does not. mayCreate (server-side apply) lets a
// missing object through as nil. In all mode it returns nil and no error:
// the target's RBAC alone decides.
func (w *Writer) checkOwnership(ctx context.Context, req *Request, mayCreate bool) (*store.Object, error) {
	if !owned(req) {
		return nil, nil
	}
	o, err := w.lookup(ctx, req, false)
	if err != nil {
		return nil, err
	}
	if o == nil && mayCreate {
		return nil, nil
	}
	if o == nil || !w.owner.owns(o.Labels) {
		return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
	}
	return o, nil
}

// labelsFor is what the owner labels must be after a write of current
// (nil: the write creates the object): the writer's labels on a create;
// on every other write, the ones current has, whoever writes. So an
// object's owner is the client that created it, and no other client's
// update (in all mode) or edit of the labels moves it: the creator keeps
// seeing it.
func (w *Writer) labelsFor(current *store.Object) ownerLabels {
	if current == nil {
		return w.owner
	}
	kept := make(ownerLabels, len(w.owner))
	for k := range w.owner {
		kept[k] = current.Labels[k]
	}
	return kept
}

// errCheckedReplaced says a write was refused because the object its
// checks saw (usually the mirror's copy, which may lag) was deleted and
// created again, and this client owns the new one: Write runs it again,
// checking at the target. A write by name addresses whatever object holds
// the name, as at the kube-apiserver; the UID precondition only keeps a
// write from landing on an object the checks did not see.
var errCheckedReplaced = errors.New("the object the write checked was replaced")

// maskLostPrecondition handles a conditional write that the target refused
// (409 Conflict or 422 Invalid): when the object is now gone or no longer
// this client's, the answer is 404 as for any object that is not the
// caller's; when it is another object of this client's, errCheckedReplaced
// (once); otherwise the target's answer stands.
func (w *Writer) maskLostPrecondition(ctx context.Context, req *Request, checked *store.Object, resp *Response) (*Response, error) {
	if checked == nil || (resp.Code != http.StatusConflict && resp.Code != http.StatusUnprocessableEntity) {
		return resp, nil
	}
	now, err := w.lookup(ctx, req, true)
	if err != nil {
		return resp, nil
	}
	switch {
	case now == nil || !w.owner.owns(now.Labels):
		return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
	case now.UID != checked.UID && !req.checkAtTarget:
		return nil, errCheckedReplaced
	case now.UID != checked.UID:
		return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
	}
	return resp, nil
}
