package writethrough

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// deleteCollectionRecheck is how long a target's refusal of
// deletecollection is remembered before it is tried again (its RBAC may
// have been changed to grant it).
const deleteCollectionRecheck = 10 * time.Minute

// deleteCollectionPageSize is the page size of the fallback's list, the
// kube-apiserver's own for a deletecollection.
const deleteCollectionPageSize = 10000

// refusals remembers, per target, resource and namespace, when a target
// last refused deletecollection for lack of the verb.
type refusals struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func (r *refusals) refused(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.since[key]
	if ok && now.Sub(t) >= deleteCollectionRecheck {
		delete(r.since, key)
		return false
	}
	return ok
}

func (r *refusals) remember(key string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since == nil {
		r.since = map[string]time.Time{}
	}
	r.since[key] = now
}

// refusesDeleteCollection reports whether a target's answer is a 403 for
// lack of the deletecollection verb (the RBAC authorizer's message names
// the verb: `cannot deletecollection resource ...`).
func refusesDeleteCollection(resp *Response) bool {
	if resp.Code != http.StatusForbidden {
		return false
	}
	var status metav1.Status
	if err := json.Unmarshal(resp.Body, &status); err != nil {
		return false
	}
	return status.Reason == metav1.StatusReasonForbidden && strings.Contains(status.Message, "deletecollection")
}

// deleteCollectionVerb carries a deletecollection: one request at the
// target with the owner selector added in owned mode, or, where the target
// refuses the verb, deleteEach. Like delete it has no namespace rule, and
// it names no object to check.
type deleteCollectionVerb struct {
	opts *metav1.DeleteOptions
	// query is the request's query with the owner selector added.
	query url.Values
}

func (v *deleteCollectionVerb) decode(_ context.Context, req *Request) error {
	v.query = url.Values{}
	for k, vals := range req.Query {
		v.query[k] = vals
	}
	if owned(req) {
		selector, err := labels.Parse(v.query.Get("labelSelector"))
		if err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		reqs, _ := req.Resource.Selector.Requirements()
		v.query.Set("labelSelector", selector.Add(reqs...).String())
	}
	var err error
	v.opts, err = deleteOptions(req)
	return err
}

func (v *deleteCollectionVerb) rules(*Request) rules { return rules{} }

// prepare sends the caller's body and the narrowed query; a target known
// to refuse the verb gets the fallback at once.
func (v *deleteCollectionVerb) prepare(ctx context.Context, w *Writer, op *operation) (*Response, error) {
	req := op.req
	op.method, op.query, op.body = http.MethodDelete, v.query, req.Body
	if len(req.Body) > 0 {
		op.contentType = req.ContentType
	}
	if w.refusals.refused(refusalKey(req), time.Now()) {
		return w.deleteEach(ctx, req, v.query, v.opts)
	}
	return nil, nil
}

func (v *deleteCollectionVerb) build(_ context.Context, _ *Writer, op *operation, _ *store.Object) ([]byte, error) {
	return op.body, nil
}

// finish turns the target's refusal of the verb into the fallback, and
// remembers it.
func (v *deleteCollectionVerb) finish(ctx context.Context, w *Writer, op *operation, resp *Response, err error) (*Response, error) {
	if err != nil || !refusesDeleteCollection(resp) {
		return resp, err
	}
	req := op.req
	w.refusals.remember(refusalKey(req), time.Now())
	w.log.Info("the target refuses deletecollection; deleting one by one",
		zap.String("target", req.Resource.Target.ID), zap.Stringer("resource", req.Resource.GVR), zap.String("namespace", req.Namespace))
	return w.deleteEach(ctx, req, v.query, v.opts)
}

// refusalKey names what a refusal of deletecollection is remembered for.
func refusalKey(req *Request) string {
	return req.Resource.Target.ID + "/" + req.Resource.GVR.String() + "/" + req.Namespace
}

// collectionList is the part of a target's list the fallback reads.
type collectionList struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// listQuery is the query of the fallback's list: the caller's selectors
// (query carries the owner selector already) and limit; the list is
// consistent (no resourceVersion), whatever the caller asked.
func listQuery(query url.Values) (url.Values, bool) {
	out := url.Values{}
	for _, k := range []string{"labelSelector", "fieldSelector"} {
		if v := query.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	limited := false
	if n, err := strconv.ParseInt(query.Get("limit"), 10, 64); err == nil && n > 0 {
		out.Set("limit", strconv.FormatInt(n, 10))
		limited = true
	} else {
		out.Set("limit", strconv.Itoa(deleteCollectionPageSize))
	}
	return out, limited
}

// deleteEach carries out a deletecollection the target refuses as what
// the kube-apiserver does inside one (registry/store.go DeleteCollection):
// a consistent list, as the identity, of the caller's matching objects,
// then a delete of each, with the caller's DeleteOptions and conditional
// on the UID listed; an object gone meanwhile (404, or 409 on the UID) is
// skipped, any other failure ends it with that answer. The answer is the
// list of the deleted objects at the list's resourceVersion, as the
// kube-apiserver answers.
func (w *Writer) deleteEach(ctx context.Context, req *Request, query url.Values, opts *metav1.DeleteOptions) (*Response, error) {
	res := req.Resource
	list, limited := listQuery(query)
	var first *collectionList
	deleted := []json.RawMessage{}
	var newest uint64
	for {
		resp, err := w.do(ctx, res.Target, "", targetRequest{method: http.MethodGet, path: req.Path, query: list, wroteNothing: true})
		if err != nil {
			return nil, partialOutcome(res.Target, len(deleted), err)
		}
		if resp.Code != http.StatusOK {
			return resp, nil
		}
		var page collectionList
		if err := kjson.UnmarshalCaseSensitivePreserveInts(resp.Body, &page); err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("decoding the target's list: %w", err))
		}
		if first == nil {
			first = &page
		}
		for _, item := range page.Items {
			o, err := store.NewObject(mirror.ViewJSON(item, res.Target.Passthrough))
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			answer, rv, err := w.deleteListed(ctx, req, o, opts)
			if err != nil {
				return nil, partialOutcome(res.Target, len(deleted), err)
			}
			if answer != nil {
				return answer, nil
			}
			if rv == 0 {
				continue // gone meanwhile
			}
			deleted = append(deleted, o.JSON)
			if rv > newest {
				newest = rv
			}
		}
		if limited || page.Metadata.Continue == "" {
			break
		}
		list.Set("continue", page.Metadata.Continue)
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": first.APIVersion,
		"kind":       first.Kind,
		"metadata":   map[string]any{"resourceVersion": first.Metadata.ResourceVersion},
		"items":      deleted,
	})
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return &Response{Code: http.StatusOK, ContentType: "application/json", Body: body, viewed: true}, nil
}

// partialOutcome is the answer of a fallback deletecollection that fails
// with err after deleted objects were deleted: a 503 saying nothing was
// written would be untrue, so it becomes 504, the outcome partial.
func partialOutcome(t *mirror.Target, deleted int, err error) error {
	if deleted == 0 || !apierrors.IsServiceUnavailable(err) {
		return err
	}
	return outcomeUnknown(fmt.Sprintf("the outcome of this deletecollection at target %s is partial: %d objects were deleted before it failed (%s); list them to learn which remain", t.ID, deleted, err))
}

// deleteListed deletes one listed object (view form) of a fallback
// deletecollection. It returns the resourceVersion of the deletion (0 when
// the object was gone), or the answer that ends the deletecollection.
func (w *Writer) deleteListed(ctx context.Context, req *Request, o *store.Object, opts *metav1.DeleteOptions) (*Response, uint64, error) {
	item := *req
	item.Verb = "delete"
	item.Name = o.Name
	item.Namespace = o.Namespace
	item.Path = mirror.ObjectPath(req.Resource, o.Namespace, o.Name)
	item.Query = url.Values{}
	item.Body = nil
	item.ContentType = ""
	itemOpts := opts.DeepCopy()
	resp, err := w.run(ctx, &item, &deleteVerb{opts: itemOpts, listed: o})
	switch {
	case apierrors.IsNotFound(err), errors.Is(err, errCheckedReplaced):
		// Gone, or replaced since the list: not among the listed objects.
		return nil, 0, nil
	case err != nil:
		return nil, 0, err
	case resp.Code == http.StatusNotFound:
		return nil, 0, nil
	case resp.Code == http.StatusConflict && lostUIDPrecondition(resp):
		return nil, 0, nil
	case resp.Code < 200 || resp.Code > 299:
		return resp, 0, nil
	}
	var answer struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(resp.Body, &answer)
	rv, _ := strconv.ParseUint(answer.Metadata.ResourceVersion, 10, 64)
	if rv == 0 {
		rv = o.ResourceVersion
	}
	if rv == 0 {
		rv = 1
	}
	return nil, rv, nil
}

// lostUIDPrecondition reports whether a 409 is the UID precondition's (the
// object was replaced), not another conflict.
func lostUIDPrecondition(resp *Response) bool {
	var status metav1.Status
	return json.Unmarshal(resp.Body, &status) == nil && strings.Contains(status.Message, "UID in precondition")
}
