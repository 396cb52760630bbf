package writethrough

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

// verb is what one Kubernetes verb adds to the steps every write runs
// (Writer.run), as a strategy adds to the kube-apiserver's generic
// registry store. A verb value serves one attempt of one request: it keeps
// the body it decoded.
type verb interface {
	// decode decodes and validates the request's body and options. It
	// runs first: bad input is refused before anything is read or
	// written.
	decode(ctx context.Context, req *Request) error
	// rules says which of the shared checks apply to the request.
	rules(req *Request) rules
	// prepare stamps and translates: from op.checked it finds the object
	// the write replaces (op.current) and sets what is sent (op.method,
	// op.contentType, op.conditional, op.createOnly) and its body, built
	// by build. A non-nil Response is the answer, and the send step is
	// skipped (delete's finalizer refused; deletecollection's fallback,
	// which sent its own requests).
	prepare(ctx context.Context, w *Writer, op *operation) (*Response, error)
	// build makes the body sent from current, the object as last read;
	// the send step calls it again after a conflict on a condition crproxy
	// added, with the object read anew.
	build(ctx context.Context, w *Writer, op *operation, current *store.Object) ([]byte, error)
	// finish sees the target's answer (or the error of sending) before
	// the lost-precondition mask: delete takes back its finalizer there,
	// the scale read checks the UID.
	finish(ctx context.Context, w *Writer, op *operation, resp *Response, err error) (*Response, error)
}

// rules are the shared checks a verb's request runs.
type rules struct {
	// namespace: the client's namespace rules apply (namespace exists in
	// the client cluster; not terminating when the write may create).
	namespace bool
	// ownership: owned mode's check of the named object.
	ownership bool
	// mayCreate: the write may create the object (create, server-side
	// apply): it passes the ownership check when the object is missing,
	// and its namespace is ensured at the target.
	mayCreate bool
}

// operation is one write passing the steps: what each step found or
// built for the next.
type operation struct {
	req *Request
	// checked is the object the ownership check saw: nil in all mode and
	// for an object a write creates.
	checked *store.Object
	// checkedMissing says the ownership check found no object (a write
	// that may create): there is none to read.
	checkedMissing bool
	// current is the object as last read, which the body is built from
	// (nil for a new object, or when the verb needs none).
	current *store.Object
	// method and contentType are those of the request sent.
	method, contentType string
	// query is the query sent, when not the request's own (nil).
	query url.Values
	// body is what build made from current.
	body []byte
	// conditional says crproxy made the write conditional on current's
	// resourceVersion: a conflict is retried (retryOnConflict).
	conditional bool
	// createOnly says an apply that creates is sent conditional on the
	// object not existing (createOnlyResourceVersion); a conflict means
	// another caller created it meanwhile.
	createOnly bool
}

// sendQuery is the query sent: op.query, else the request's.
func (op *operation) sendQuery() url.Values {
	if op.query != nil {
		return op.query
	}
	return op.req.Query
}

// uid is the UID the write is conditional on: the checked object's.
func (op *operation) uid() string {
	if op.checked == nil {
		return ""
	}
	return op.checked.UID
}

// replaced returns the object the write replaces, for its owner labels and
// target-only ownerReferences: the one the ownership check saw (none when
// it found none), else the mirror's, else the target's (nil when it does
// not exist).
func (w *Writer) replaced(ctx context.Context, op *operation) (*store.Object, error) {
	if op.checked != nil || op.checkedMissing {
		return op.checked, nil
	}
	return w.lookup(ctx, op.req, false)
}

// verbOf returns the verb that carries req, nil when there is none.
func verbOf(req *Request) verb {
	switch req.Verb {
	case "create":
		return &createVerb{}
	case "update":
		return &updateVerb{}
	case "patch":
		return &patchVerb{}
	case "delete":
		return &deleteVerb{}
	case "deletecollection":
		return &deleteCollectionVerb{}
	case "get":
		if req.scale() {
			return getScaleVerb{}
		}
	}
	return nil
}

// write runs one attempt of a write by its verb.
func (w *Writer) write(ctx context.Context, req *Request) (*Response, error) {
	v := verbOf(req)
	if v == nil {
		return nil, apierrors.NewMethodNotSupported(req.Resource.GVR.GroupResource(), req.Verb)
	}
	return w.run(ctx, req, v)
}

// run carries req through the steps every write runs, in this order:
//
//  1. decode: the verb decodes and validates the body (400, 413, 415,
//     422); nothing has been read or written. Then the reachability gate:
//     503 while the target is unreachable (reachable);
//  2. namespace: the client's namespace rules (its namespace informer);
//  3. ownership: owned mode's check of the named object (the mirror's
//     copy, else a read at the target);
//  4. stamp and translate: the verb builds the body from the object the
//     write replaces (owner labels, the checked UID as a precondition,
//     ownerReferences in the target's form);
//  5. target namespace: created at the target for a write that may
//     create, once every check has passed (a dry run runs in a stand-in
//     namespace instead);
//  6. send: the one conflict loop (retryOnConflict) retries a condition
//     crproxy added; an apply made create-only that finds the object
//     created meanwhile is checked and sent again as an apply to it;
//  7. finish and mask: the verb sees the answer, then a lost UID
//     precondition answers as the object's absence (or reruns the write,
//     errCheckedReplaced).
//
// Each step reads the target at most once for the object; a request needs
// no more round trips than its verb's work requires.
func (w *Writer) run(ctx context.Context, req *Request, v verb) (*Response, error) {
	if err := v.decode(ctx, req); err != nil {
		return nil, err
	}
	if err := reachable(ctx, req); err != nil {
		return nil, err
	}
	r := v.rules(req)
	if r.namespace {
		if err := w.checkNamespace(ctx, req, r.mayCreate); err != nil {
			return nil, err
		}
	}
	op := &operation{req: req}
	if r.ownership {
		checked, err := w.checkOwnership(ctx, req, r.mayCreate)
		if err != nil {
			return nil, err
		}
		op.checked, op.checkedMissing = checked, checked == nil && owned(req)
	}
	if resp, err := v.prepare(ctx, w, op); err != nil || resp != nil {
		return resp, err
	}
	if r.mayCreate {
		// Once every check has passed and the body is built: a write
		// refused must not leave a namespace behind.
		if err := w.ensureTargetNamespace(ctx, req); err != nil {
			if dryRunNamespaceMissing(req, err) {
				return w.dryRunInStandIn(ctx, req, op.method, op.contentType, op.body, err)
			}
			return nil, err
		}
	}
	resp, err := w.sendBuilt(ctx, v, op)
	resp, err = v.finish(ctx, w, op, resp, err)
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, op.checked, resp)
}

// sendBuilt is the send step: op.body, then, after a conflict on a
// condition crproxy added, the body built from the object read anew.
func (w *Writer) sendBuilt(ctx context.Context, v verb, op *operation) (*Response, error) {
	req := op.req
	if op.createOnly {
		resp, err := w.send(ctx, req, op.method, op.sendQuery(), op.contentType, op.body)
		if err != nil || resp.Code != http.StatusConflict {
			return resp, err
		}
		// Created meanwhile: apply to it if it is this client's, else it
		// is none of the caller's business.
		fresh, err := w.checkOwnership(ctx, req, false)
		if err != nil {
			return nil, err
		}
		op.checked, op.current, op.createOnly = fresh, fresh, false
		if op.body, err = v.build(ctx, w, op, fresh); err != nil {
			return nil, err
		}
	}
	built := op.current // what op.body was built from
	resp, _, err := w.retryOnConflict(ctx, req, op.checked, op.current, op.conditional, func(current *store.Object) (*Response, error) {
		if current != built {
			body, err := v.build(ctx, w, op, current)
			if err != nil {
				return nil, err
			}
			op.body, built = body, current
		}
		return w.send(ctx, req, op.method, op.sendQuery(), op.contentType, op.body)
	})
	return resp, err
}

// send passes a write to the target at the request's own path.
func (w *Writer) send(ctx context.Context, req *Request, method string, query url.Values, contentType string, body []byte) (*Response, error) {
	resp, err := w.do(ctx, req.Resource.Target, w.caller(req), targetRequest{method: method, path: req.Path, query: query, contentType: contentType, body: body})
	if err == nil && resp.Code == http.StatusNotFound && req.Namespace != "" && w.namespaces != nil && namespaceMissing(resp, req.Namespace) {
		// The namespace was deleted at the target since it was ensured;
		// ensure it again next time.
		w.namespaces.forgetTarget(req.Resource.Target, req.Namespace)
	}
	return resp, err
}

// namespaceMissing reports whether a 404 from the target is about the
// namespace itself (`namespaces "x" not found`), not the object.
func namespaceMissing(resp *Response, namespace string) bool {
	var status *apierrors.StatusError
	if !errors.As(statusError(resp), &status) || status.ErrStatus.Details == nil {
		return false
	}
	d := status.ErrStatus.Details
	return d.Kind == "namespaces" && d.Name == namespace
}

// checkNamespace applies the client's namespace rules to a namespaced
// write: the namespace must exist in the client cluster, and not be
// terminating for a write that may create an object.
func (w *Writer) checkNamespace(ctx context.Context, req *Request, creating bool) error {
	if !req.Resource.API().Namespaced || req.Namespace == "" || w.namespaces == nil {
		return nil
	}
	return w.namespaces.checkClient(ctx, req.Resource.GVR.GroupResource(), req.Name, req.Namespace, creating)
}

// ensureTargetNamespace makes sure the namespace of a write that may
// create an object exists at the target. A dry run creates nothing: it
// needs the namespace to be there already.
func (w *Writer) ensureTargetNamespace(ctx context.Context, req *Request) error {
	if !req.Resource.API().Namespaced || req.Namespace == "" || w.namespaces == nil {
		return nil
	}
	return w.namespaces.ensureTarget(ctx, req.Resource.Target, req.Namespace, !isDryRun(req))
}

// isDryRun reports whether req asks for a dry run (?dryRun=All).
func isDryRun(req *Request) bool { return len(req.Query["dryRun"]) > 0 }

// owned reports whether req's resource is proxied in owned mode.
func owned(req *Request) bool { return req.Resource.Access == config.AccessOwned }

// noFinish is the finish of a verb that leaves the answer as it is.
type noFinish struct{}

func (noFinish) finish(_ context.Context, _ *Writer, _ *operation, resp *Response, err error) (*Response, error) {
	return resp, err
}
