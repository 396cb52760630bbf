package writethrough

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// deleteVerb deletes an object, conditional on the checked UID. A delete
// with propagationPolicy Orphan or Foreground first gives the object the
// crproxy name of that GC finalizer, so that the client's garbage
// collector, not the target's, orphans or deletes the client's
// dependents; the target still gets the caller's policy for its own
// dependents. When the delete then fails, the finalizer is taken back.
type deleteVerb struct {
	opts *metav1.DeleteOptions
	// listed is the object a fallback deletecollection listed with the
	// owner selector: the delete is conditional on it, checked already.
	listed *store.Object
	// finalizer is the GC finalizer added, on finalized, the object as
	// the target answered the addition.
	finalizer string
	finalized *store.Object
}

func (v *deleteVerb) decode(_ context.Context, req *Request) (err error) {
	if v.opts == nil {
		v.opts, err = deleteOptions(req)
	}
	return err
}

// rules: no namespace rule, as the NamespaceLifecycle admission plugin
// lets every delete pass (an object in a namespace the client no longer
// has is still deleted at the target).
func (v *deleteVerb) rules(*Request) rules {
	return rules{ownership: v.listed == nil}
}

func (v *deleteVerb) prepare(ctx context.Context, w *Writer, op *operation) (*Response, error) {
	req, opts := op.req, v.opts
	if v.listed != nil {
		op.checked = v.listed
	}
	op.current = op.checked
	op.method, op.body = http.MethodDelete, req.Body
	f := gcFinalizer(opts)
	dryRun := len(opts.DryRun) > 0 || isDryRun(req)
	if f != "" && !dryRun && req.Subresource == "" {
		if op.current == nil {
			c, err := w.lookup(ctx, req, false)
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
			}
			op.current = c
		}
		resp, obj, err := w.addFinalizer(ctx, req, opts, op.checked, op.current, f)
		if err != nil || resp != nil {
			return resp, err
		}
		if obj != nil {
			v.finalizer, v.finalized = f, obj
		}
	}
	if target := op.checked; target != nil || v.finalized != nil {
		if target == nil {
			target = v.finalized
		}
		if opts.Preconditions == nil {
			opts.Preconditions = &metav1.Preconditions{}
		}
		if opts.Preconditions.UID != nil && string(*opts.Preconditions.UID) != target.UID {
			return nil, errUIDPrecondition(req, string(*opts.Preconditions.UID), target.UID)
		}
		uid := types.UID(target.UID)
		opts.Preconditions.UID = &uid
		if v.finalized != nil {
			// Checked when the finalizer was added, which changed it.
			opts.Preconditions.ResourceVersion = nil
		}
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}
		var err error
		if op.body, err = json.Marshal(opts); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	if len(op.body) > 0 {
		op.contentType = "application/json"
	}
	return nil, nil
}

// build is never called again: a delete is conditional only on what the
// caller or the check set.
func (v *deleteVerb) build(_ context.Context, _ *Writer, op *operation, _ *store.Object) ([]byte, error) {
	return op.body, nil
}

func (v *deleteVerb) finish(ctx context.Context, w *Writer, op *operation, resp *Response, err error) (*Response, error) {
	req := op.req
	if v.finalized == nil {
		return resp, err
	}
	if err != nil {
		if !w.removeFinalizer(ctx, req, v.finalized, v.finalizer) && apierrors.IsServiceUnavailable(err) {
			// The DELETE was not sent, but the finalizer stays: not
			// "nothing was written".
			return nil, outcomeUnknown(fmt.Sprintf("the delete did not reach target %s, but the finalizer %s it added first could not be taken back; delete again to finish: %v", req.Resource.Target.ID, v.finalizer, err))
		}
		return nil, err
	}
	if resp.Code < 200 || resp.Code > 299 {
		w.removeFinalizer(ctx, req, v.finalized, v.finalizer)
	}
	return resp, nil
}

// deleteOptions decodes the DeleteOptions of a delete: from the body when
// there is one, else from the query, as the kube-apiserver reads them.
func deleteOptions(req *Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	if len(req.Body) > 0 {
		// JSON is YAML: one decoder reads either body.
		if err := yaml.Unmarshal(req.Body, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
		}
		return opts, nil
	}
	query := req.Query
	if err := metav1.Convert_url_Values_To_v1_DeleteOptions(&query, opts, nil); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return opts, nil
}

// addFinalizer gives the object (current, as last seen) the target GC
// finalizer f, conditional on its UID and resourceVersion (the caller's
// resourceVersion precondition, when it has one), retrying on a conflict
// when crproxy chose the resourceVersion. It returns the object as the
// target now has it, or nil when nothing was needed (being deleted
// already, or f is there); or the target's refusal as the answer.
func (w *Writer) addFinalizer(ctx context.Context, req *Request, opts *metav1.DeleteOptions, checked, current *store.Object, f string) (*Response, *store.Object, error) {
	callerRV := ""
	if opts.Preconditions != nil && opts.Preconditions.ResourceVersion != nil {
		callerRV = *opts.Preconditions.ResourceVersion
	}
	needed := true
	resp, gone, err := w.retryOnConflict(ctx, req, checked, current, callerRV == "", func(current *store.Object) (*Response, error) {
		rv := callerRV
		if rv == "" {
			rv = fmt.Sprint(current.ResourceVersion)
		}
		patch := finalizerPatch(decodeJSON(current), f, rv)
		if patch == nil {
			needed = false
			return &Response{}, nil
		}
		return w.do(ctx, req.Resource.Target, w.caller(req), targetRequest{
			method: http.MethodPatch, path: req.Path, query: url.Values{}, contentType: string(types.MergePatchType), body: patch,
		})
	})
	switch {
	case err != nil:
		return nil, nil, err
	case !needed:
		return nil, nil, nil
	case resp.Code == http.StatusOK:
		o, err := store.NewObject(mirror.ViewJSON(resp.Body, req.Resource.Target.Passthrough))
		if err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		return nil, o, nil
	case gone, resp.Code == http.StatusNotFound:
		// A 404 here tells the caller the object is gone (a delete's
		// success to many controllers): only a read that says so may
		// give it.
		return nil, nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
	}
	resp, err = w.maskLostPrecondition(ctx, req, checked, resp)
	return resp, nil, err
}

// removeFinalizer takes back the finalizer addFinalizer added, when the
// delete that was to follow it failed (best effort, conditional on the
// resourceVersion it answered); it reports whether it did.
func (w *Writer) removeFinalizer(ctx context.Context, req *Request, o *store.Object, f string) bool {
	doc := decodeJSON(o)
	meta, _ := doc["metadata"].(map[string]any)
	list, _ := meta["finalizers"].([]any)
	out := []any{}
	for _, x := range list {
		if s, _ := x.(string); mirror.SwapFinalizer(s) != f {
			out = append(out, mirror.SwapFinalizer(s))
		}
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": o.UID, "resourceVersion": fmt.Sprint(o.ResourceVersion), "finalizers": out,
	}})
	resp, err := w.do(ctx, req.Resource.Target, w.caller(req), targetRequest{
		method: http.MethodPatch, path: req.Path, query: url.Values{}, contentType: string(types.MergePatchType), body: patch,
	})
	if err != nil || resp.Code != http.StatusOK {
		w.log.Warn("could not take back the GC finalizer of a failed delete", zap.String("target", req.Resource.Target.ID),
			zap.String("namespace", req.Namespace), zap.String("name", req.Name), zap.String("finalizer", f))
		return false
	}
	return true
}
