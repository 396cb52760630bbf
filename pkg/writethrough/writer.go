package writethrough

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// Defaults of Options.
const (
	DefaultTargetTimeout = 30 * time.Second
)

// patchMediaTypes are the patch types a custom resource accepts, in the
// kube-apiserver's order.
var patchMediaTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.ApplyYAMLPatchType)}

// Options configures a Writer.
type Options struct {
	// Client is the client cluster this crproxy acts for: its owner
	// labels are stamped on every write.
	Client config.Client
	// Namespaces checks the client cluster's namespaces and creates
	// missing ones at targets.
	Namespaces *Namespaces
	// TargetTimeout bounds one request to a target (DefaultTargetTimeout
	// when 0).
	TargetTimeout time.Duration
	// OnForbidden, when set, is told of every 403 a target answers (the
	// platform's permission may have been revoked); it must not block.
	OnForbidden func(targetID string)
	// Logger logs; zap.NewNop when nil.
	Logger *zap.Logger
}

// Writer writes mutations through to the targets.
type Writer struct {
	owner         ownerLabels
	namespaces    *Namespaces
	targetTimeout time.Duration
	onForbidden   func(targetID string)
	log           *zap.Logger
	// refusals are the targets that refused deletecollection lately.
	refusals refusals
}

// New returns a Writer.
func New(o Options) *Writer {
	w := &Writer{
		owner:         o.Client.OwnerLabels(),
		namespaces:    o.Namespaces,
		targetTimeout: o.TargetTimeout,
		onForbidden:   o.OnForbidden,
		log:           o.Logger,
	}
	if w.targetTimeout == 0 {
		w.targetTimeout = DefaultTargetTimeout
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	return w
}

// Write carries req to its target and returns the target's answer, or an
// error that is a Kubernetes Status (bad input, ownership, namespaces,
// an unreachable target). It answers as soon as the target has: a
// consistent read after it reflects the write (pkg/mirror).
func (w *Writer) Write(ctx context.Context, req *Request) (*Response, error) {
	conn := req.Resource.Target.Connection
	if since, down := conn.CheckReachable(ctx); down {
		what := "nothing was written (writes are not queued)"
		if req.Verb == "get" {
			what = "the " + req.Subresource + " subresource is read from the target"
		}
		e := apierrors.NewServiceUnavailable(fmt.Sprintf("target %s unreachable since %s; %s",
			req.Resource.Target.ID, since.UTC().Format(time.RFC3339), what))
		e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
		return nil, e
	}
	resp, err := w.write(ctx, req)
	if errors.Is(err, errCheckedReplaced) {
		req.checkAtTarget = true
		resp, err = w.write(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	if !resp.viewed && resp.Code >= 200 && resp.Code <= 299 {
		resp.Body = mirror.ViewJSON(resp.Body, req.Resource.Target.Passthrough)
	}
	return resp, nil
}

// write runs one attempt of a write by its verb.
func (w *Writer) write(ctx context.Context, req *Request) (*Response, error) {
	switch req.Verb {
	case "create":
		return w.create(ctx, req)
	case "update":
		return w.update(ctx, req)
	case "patch":
		return w.patch(ctx, req)
	case "delete":
		return w.delete(ctx, req)
	case "deletecollection":
		return w.deleteCollection(ctx, req)
	case "get":
		if req.scale() {
			return w.getScale(ctx, req)
		}
	}
	return nil, apierrors.NewMethodNotSupported(req.Resource.GVR.GroupResource(), req.Verb)
}

func (w *Writer) caller(req *Request) string {
	if req.User == nil {
		return ""
	}
	return req.User.GetName()
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
// create an object exists at the target, once every check has passed. A
// dry run creates nothing: it needs the namespace to be there already.
func (w *Writer) ensureTargetNamespace(ctx context.Context, req *Request) error {
	if !req.Resource.API().Namespaced || req.Namespace == "" || w.namespaces == nil {
		return nil
	}
	return w.namespaces.ensureTarget(ctx, req.Resource.Target, req.Namespace, !isDryRun(req))
}

// isDryRun reports whether req asks for a dry run (?dryRun=All).
func isDryRun(req *Request) bool { return len(req.Query["dryRun"]) > 0 }

func (w *Writer) create(ctx context.Context, req *Request) (*Response, error) {
	obj, err := decodeObject(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := w.owner.stampObject(obj); err != nil {
		return nil, err
	}
	meta, _ := metadataOf(obj)
	if err := translator(req).wholeObject(meta, nil); err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := w.checkNamespace(ctx, req, true); err != nil {
		return nil, err
	}
	if err := w.ensureTargetNamespace(ctx, req); err != nil {
		if dryRunNamespaceMissing(req, err) {
			return w.dryRunInStandIn(ctx, req, http.MethodPost, "application/json", body, err)
		}
		return nil, err
	}
	return w.send(ctx, req, http.MethodPost, req.Query, "application/json", body)
}

// current returns the object a write replaces, for its target-only
// ownerReferences: the one the ownership check saw, else the mirror's,
// else the target's (nil when it does not exist).
func (w *Writer) current(ctx context.Context, req *Request, checked *store.Object) (*store.Object, error) {
	if checked != nil {
		return checked, nil
	}
	return w.lookup(ctx, req, false)
}

// refresh reads the object again at the target after a conflict on a
// condition crproxy added; nil when it is gone or, in owned mode, another
// object or no longer this client's (the write then answers as it would
// have). Its error is the lookup's: a lost read is 503, nothing written,
// never an answer made up without the object.
func (w *Writer) refresh(ctx context.Context, req *Request, checked *store.Object) (*store.Object, error) {
	fresh, err := w.lookup(ctx, req, true)
	if err != nil || fresh == nil {
		return nil, err
	}
	if checked != nil && (fresh.UID != checked.UID || !w.owner.owns(fresh.Labels)) {
		return nil, nil
	}
	return fresh, nil
}

// decodeJSON decodes an object's JSON (integers kept), nil when o is nil.
func decodeJSON(o *store.Object) map[string]any {
	if o == nil {
		return nil
	}
	var m map[string]any
	_ = kjson.UnmarshalCaseSensitivePreserveInts(o.JSON, &m)
	return m
}

// deepCopyJSON copies a decoded JSON document.
func deepCopyJSON(m map[string]any) map[string]any {
	data, _ := json.Marshal(m)
	var out map[string]any
	_ = kjson.UnmarshalCaseSensitivePreserveInts(data, &out)
	return out
}

func (w *Writer) update(ctx context.Context, req *Request) (*Response, error) {
	obj, err := decodeObject(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := w.checkNamespace(ctx, req, false); err != nil {
		return nil, err
	}
	checked, err := w.checkOwnership(ctx, req, false)
	if err != nil {
		return nil, err
	}
	// The object replaced, for its owner labels and target-only
	// ownerReferences; a status write's metadata is ignored by the
	// target, so it needs no lookup.
	current := checked
	if req.Subresource == "" {
		if current, err = w.current(ctx, req, checked); err != nil {
			return nil, err
		}
	}
	if !req.scale() {
		if err := w.labelsFor(current).stampObject(obj); err != nil {
			return nil, err
		}
	}
	if checked != nil && !req.scale() {
		// The UID in the body is a precondition of the update: it cannot
		// land on an object recreated since the check. A UID the caller
		// set must be the object's: another one is refused here, as the
		// target would, before anything reaches it.
		meta, _ := metadataOf(obj)
		switch uid, _ := meta["uid"].(string); uid {
		case "":
			meta["uid"] = checked.UID
		case checked.UID:
		default:
			return nil, apierrors.NewConflict(req.Resource.GVR.GroupResource(), req.Name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, checked.UID))
		}
	}
	if req.scale() {
		return w.updateScale(ctx, req, obj, checked)
	}
	if req.Subresource != "" {
		// A status write: the target ignores metadata there.
		body, err := json.Marshal(obj)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		resp, err := w.send(ctx, req, http.MethodPut, req.Query, "application/json", body)
		if err != nil {
			return nil, err
		}
		return w.maskLostPrecondition(ctx, req, checked, resp)
	}
	meta, _ := metadataOf(obj)
	// An update without a resourceVersion replaces whatever the target
	// has: crproxy makes it conditional on the version whose target-only
	// ownerReferences it puts back, and retries on a conflict.
	rv, _ := meta["resourceVersion"].(string)
	conditional := rv == "" && current != nil
	resp, _, err := w.retryOnConflict(ctx, req, checked, current, conditional, func(current *store.Object) (*Response, error) {
		sent := deepCopyJSON(obj)
		sentMeta, _ := metadataOf(sent)
		if err := translator(req).wholeObject(sentMeta, targetOnlyOf(decodeJSON(current))); err != nil {
			return nil, err
		}
		if conditional {
			sentMeta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
		}
		body, err := json.Marshal(sent)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		return w.send(ctx, req, http.MethodPut, req.Query, "application/json", body)
	})
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

func (w *Writer) patch(ctx context.Context, req *Request) (*Response, error) {
	patchType := types.PatchType(req.ContentType)
	switch patchType {
	case types.JSONPatchType, types.MergePatchType, types.ApplyYAMLPatchType:
	default:
		return nil, negotiation.NewUnsupportedMediaTypeError(patchMediaTypes)
	}
	apply := patchType == types.ApplyYAMLPatchType && req.Subresource == ""
	if err := w.checkNamespace(ctx, req, apply); err != nil {
		return nil, err
	}
	checked, err := w.checkOwnership(ctx, req, apply)
	if err != nil {
		return nil, err
	}
	uid := ""
	if checked != nil {
		uid = checked.UID
	}
	// An apply that creates, in owned mode, must not land on an object
	// another client created since the check: it is sent conditional on a
	// resourceVersion no object has, which the target ignores when it
	// creates and refuses (409) when the object exists.
	createOnly := apply && checked == nil && req.Resource.Access == config.AccessOwned
	gr := req.Resource.GVR.GroupResource()
	if patchType == types.JSONPatchType && req.Subresource == "" && jsonPatchTouchesOwnership(req.Body) {
		return w.jsonPatchLocally(ctx, req, checked, uid)
	}
	var body []byte
	contentType := req.ContentType
	conditional := false
	current := checked
	switch patchType {
	case types.JSONPatchType:
		if current == nil {
			if current, err = w.lookup(ctx, req, false); err != nil {
				return nil, err
			}
			if current == nil {
				return nil, apierrors.NewNotFound(gr, req.Name)
			}
		}
		if req.scale() {
			// The patch applies to the Scale the target computes, not to
			// the object: only its UID, which the Scale carries, is a
			// precondition to add.
			body, err = scaleJSONPatch(req.Body, uid)
			break
		}
		body, err = w.labelsFor(current).stampJSONPatch(gr, req.Name, req.Body, current.JSON, uid)
		if apierrors.IsInvalid(err) && checked != nil {
			// The mirror may be behind the target: try its current state.
			if fresh, lookupErr := w.lookup(ctx, req, true); lookupErr == nil && fresh != nil {
				body, err = w.labelsFor(fresh).stampJSONPatch(gr, req.Name, req.Body, fresh.JSON, uid)
			}
		}
	default:
		if req.Subresource == "" {
			if current, err = w.current(ctx, req, checked); err != nil {
				return nil, err
			}
		}
		body, conditional, err = w.stampDocumentPatch(ctx, req, patchType, current, uid, createOnly)
	}
	if err != nil {
		return nil, err
	}
	if apply {
		// Once every check has passed and the body is stamped: an apply
		// that is refused must not leave a namespace behind.
		if err := w.ensureTargetNamespace(ctx, req); err != nil {
			if dryRunNamespaceMissing(req, err) {
				return w.dryRunInStandIn(ctx, req, http.MethodPatch, contentType, body, err)
			}
			return nil, err
		}
	}
	if createOnly {
		resp, err := w.send(ctx, req, http.MethodPatch, req.Query, contentType, body)
		if err != nil || resp.Code != http.StatusConflict {
			return resp, err
		}
		// Created meanwhile: apply to it if it is this client's, else
		// it is none of the caller's business.
		fresh, err := w.checkOwnership(ctx, req, false)
		if err != nil {
			return nil, err
		}
		checked, current, uid = fresh, fresh, fresh.UID
		if body, conditional, err = w.stampDocumentPatch(ctx, req, patchType, fresh, uid, false); err != nil {
			return nil, err
		}
	}
	stamped := current // what body was stamped from
	resp, _, err := w.retryOnConflict(ctx, req, checked, current, conditional, func(current *store.Object) (*Response, error) {
		if current != stamped {
			var err error
			if body, _, err = w.stampDocumentPatch(ctx, req, patchType, current, uid, false); err != nil {
				return nil, err
			}
			stamped = current
		}
		return w.send(ctx, req, http.MethodPatch, req.Query, contentType, body)
	})
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

// createOnlyResourceVersion is a resourceVersion no object has: etcd's
// first write is revision 2.
const createOnlyResourceVersion = "1"

// jsonPatchLocally carries a JSON patch that touches ownerReferences,
// finalizers or annotations: it is applied to the view here and sent as
// the equivalent merge patch of the target form, conditional on the
// resourceVersion it was applied to, retried on a conflict (the verb stays
// patch).
func (w *Writer) jsonPatchLocally(ctx context.Context, req *Request, checked *store.Object, uid string) (*Response, error) {
	gr := req.Resource.GVR.GroupResource()
	current, err := w.current(ctx, req, checked)
	if err != nil {
		return nil, err
	}
	if current == nil {
		return nil, apierrors.NewNotFound(gr, req.Name)
	}
	stamp := func(obj map[string]any) error {
		if err := w.labelsFor(current).stampObject(obj); err != nil {
			return err
		}
		if uid != "" {
			meta, _ := metadataOf(obj)
			meta["uid"] = uid
		}
		return nil
	}
	build := func(current *store.Object) ([]byte, error) {
		body, err := translator(req).jsonPatchAsMergePatch(req.Body, current.JSON, stamp)
		if err != nil {
			return nil, err
		}
		if uid == "" {
			return body, nil
		}
		// The UID is a condition too, as for any owned write.
		var patch map[string]any
		_ = kjson.UnmarshalCaseSensitivePreserveInts(body, &patch)
		meta, _ := metadataOf(patch)
		meta["uid"] = uid
		return json.Marshal(patch)
	}
	body, err := build(current)
	if apierrors.IsInvalid(err) || isUnprocessable(err) {
		// The mirror may be behind the target: try its current state.
		if fresh, _ := w.refresh(ctx, req, checked); fresh != nil {
			current = fresh
			body, err = build(current)
		}
	}
	if err != nil {
		return nil, err
	}
	built := current // what body was built from
	resp, _, err := w.retryOnConflict(ctx, req, checked, current, true, func(current *store.Object) (*Response, error) {
		if current != built {
			var err error
			if body, err = build(current); err != nil {
				return nil, err
			}
			built = current
		}
		return w.send(ctx, req, http.MethodPatch, req.Query, string(types.MergePatchType), body)
	})
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

// isUnprocessable reports a 422 Status error.
func isUnprocessable(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code == http.StatusUnprocessableEntity
}

// stampDocumentPatch stamps the owner labels (and the checked UID) on a
// merge patch or an apply configuration, and turns its ownerReferences,
// finalizers and crproxy annotations into the target form (current is the
// object as last seen, nil for a status write or a new object). It
// reports whether the patch was made conditional on current's
// resourceVersion (a merge patch that sets ownerReferences, a status
// patch). createOnly makes an apply conditional on the object not
// existing (createOnlyResourceVersion).
func (w *Writer) stampDocumentPatch(ctx context.Context, req *Request, patchType types.PatchType, current *store.Object, uid string, createOnly bool) ([]byte, bool, error) {
	apply := patchType == types.ApplyYAMLPatchType
	doc, err := decodeDocument(ctx, req.Body, apply, req.Query.Get("fieldValidation"))
	if err != nil {
		return nil, false, err
	}
	patch, ok := doc.(map[string]any)
	if !ok {
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("the patch is not a JSON object: %s", summarize(req.Body)))
	}
	switch {
	case req.scale():
		// A Scale's metadata is not the object's: no labels to keep.
	case apply:
		err = w.labelsFor(current).stampObject(patch)
	default:
		if current == nil {
			if o, _, ok := req.Resource.Cache.Get(req.Namespace, req.Name); ok {
				current = o
			}
		}
		labels := map[string]string(nil)
		if current != nil {
			labels = current.Labels
		}
		err = w.labelsFor(current).stampMergePatch(patch, labels)
	}
	if err != nil {
		return nil, false, err
	}
	meta, err := metadataOf(patch)
	if err != nil {
		return nil, false, err
	}
	if uid != "" {
		meta["uid"] = uid
	}
	conditional := false
	if _, has := meta["resourceVersion"]; req.Subresource != "" && uid != "" && current != nil && !has {
		// A status write: the target resets its metadata, UID included,
		// before a UID could act as a precondition, but compares the
		// resourceVersion first. So the write is conditional on the
		// version the ownership check saw, retried on a conflict while
		// the object is still this client's.
		meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
		conditional = true
	}
	if req.Subresource == "" {
		currentDoc := decodeJSON(current)
		if apply {
			err = translator(req).applyConfiguration(meta, currentDoc)
		} else {
			var touched bool
			touched, err = translator(req).mergePatch(meta, currentDoc)
			if _, has := meta["resourceVersion"]; touched && !has && current != nil {
				meta["resourceVersion"] = fmt.Sprint(current.ResourceVersion)
				conditional = true
			}
		}
		if err != nil {
			return nil, false, err
		}
	}
	if createOnly {
		meta["resourceVersion"] = createOnlyResourceVersion
	}
	body, err := json.Marshal(patch)
	return body, conditional, err
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

func (w *Writer) delete(ctx context.Context, req *Request) (*Response, error) {
	opts, err := deleteOptions(req)
	if err != nil {
		return nil, err
	}
	checked, err := w.checkOwnership(ctx, req, false)
	if err != nil {
		return nil, err
	}
	return w.deleteObject(ctx, req, opts, checked, checked)
}

// deleteObject deletes req's object with opts. checked, when set, is the
// object the delete is conditional on (its UID). A delete with
// propagationPolicy Orphan or Foreground first gives the object the
// crproxy name of that GC finalizer (current is the object as last seen),
// so that the client's garbage collector, not the target's, orphans or
// deletes the client's dependents; the target still gets the caller's
// policy for its own dependents.
func (w *Writer) deleteObject(ctx context.Context, req *Request, opts *metav1.DeleteOptions, checked, current *store.Object) (*Response, error) {
	body := req.Body
	f := gcFinalizer(opts)
	dryRun := len(opts.DryRun) > 0 || len(req.Query["dryRun"]) > 0
	var finalized *store.Object
	if f != "" && !dryRun && req.Subresource == "" {
		if current == nil {
			c, err := w.lookup(ctx, req, false)
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, apierrors.NewNotFound(req.Resource.GVR.GroupResource(), req.Name)
			}
			current = c
		}
		resp, obj, err := w.addFinalizer(ctx, req, opts, checked, current, f)
		if err != nil || resp != nil {
			return resp, err
		}
		finalized = obj
	}
	if checked != nil || finalized != nil {
		if opts.Preconditions == nil {
			opts.Preconditions = &metav1.Preconditions{}
		}
		target := checked
		if target == nil {
			target = finalized
		}
		if opts.Preconditions.UID != nil && string(*opts.Preconditions.UID) != target.UID {
			return nil, apierrors.NewConflict(req.Resource.GVR.GroupResource(), req.Name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *opts.Preconditions.UID, target.UID))
		}
		uid := types.UID(target.UID)
		opts.Preconditions.UID = &uid
		if finalized != nil {
			// Checked when the finalizer was added, which changed it.
			opts.Preconditions.ResourceVersion = nil
		}
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}
		var err error
		if body, err = json.Marshal(opts); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	contentType := ""
	if len(body) > 0 {
		contentType = "application/json"
	}
	resp, err := w.send(ctx, req, http.MethodDelete, req.Query, contentType, body)
	if err != nil {
		if finalized != nil && !w.removeFinalizer(ctx, req, finalized, f) && apierrors.IsServiceUnavailable(err) {
			// The DELETE was not sent, but the finalizer stays: not
			// "nothing was written".
			return nil, outcomeUnknown(fmt.Sprintf("the delete did not reach target %s, but the finalizer %s it added first could not be taken back; delete again to finish: %v", req.Resource.Target.ID, f, err))
		}
		return nil, err
	}
	if finalized != nil && (resp.Code < 200 || resp.Code > 299) {
		w.removeFinalizer(ctx, req, finalized, f)
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
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
