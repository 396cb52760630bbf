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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"sigs.k8s.io/yaml"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

// Defaults of Options.
const (
	DefaultReadYourWritesTimeout = 5 * time.Second
	DefaultTargetTimeout         = 30 * time.Second
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
	// ReadYourWritesTimeout bounds the wait for the mirror to hold a
	// write (DefaultReadYourWritesTimeout when 0).
	ReadYourWritesTimeout time.Duration
	// TargetTimeout bounds one request to a target (DefaultTargetTimeout
	// when 0).
	TargetTimeout time.Duration
	// Logger logs; zap.NewNop when nil.
	Logger *zap.Logger
}

// Writer writes mutations through to the targets.
type Writer struct {
	owner                 ownerLabels
	namespaces            *Namespaces
	readYourWritesTimeout time.Duration
	targetTimeout         time.Duration
	log                   *zap.Logger
}

// New returns a Writer.
func New(o Options) *Writer {
	w := &Writer{
		owner:                 o.Client.OwnerLabels(),
		namespaces:            o.Namespaces,
		readYourWritesTimeout: o.ReadYourWritesTimeout,
		targetTimeout:         o.TargetTimeout,
		log:                   o.Logger,
	}
	if w.readYourWritesTimeout == 0 {
		w.readYourWritesTimeout = DefaultReadYourWritesTimeout
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
// an unreachable target). A successful answer is returned once the mirror
// holds it.
func (w *Writer) Write(ctx context.Context, req *Request) (*Response, error) {
	conn := req.Resource.Target.Connection
	if since, down := conn.CheckReachable(ctx); down {
		e := apierrors.NewServiceUnavailable(fmt.Sprintf("target %s unreachable since %s; nothing was written (writes are not queued)",
			req.Resource.Target.ID, since.UTC().Format(time.RFC3339)))
		e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
		return nil, e
	}
	var resp *Response
	var err error
	switch req.Verb {
	case "create":
		resp, err = w.create(ctx, req)
	case "update":
		resp, err = w.update(ctx, req)
	case "patch":
		resp, err = w.patch(ctx, req)
	case "delete":
		resp, err = w.delete(ctx, req)
	case "deletecollection":
		resp, err = w.deleteCollection(ctx, req)
	default:
		return nil, apierrors.NewMethodNotSupported(req.Resource.GVR.GroupResource(), req.Verb)
	}
	if err != nil {
		return nil, err
	}
	w.waitForMirror(ctx, req, resp)
	return resp, nil
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

// checkNamespace applies the namespace rules to a namespaced write: the
// namespace must exist in the client cluster, and a write that may create
// an object makes sure it exists at the target.
func (w *Writer) checkNamespace(ctx context.Context, req *Request, creating bool) error {
	if !req.Resource.API.Namespaced || req.Namespace == "" || w.namespaces == nil {
		return nil
	}
	if err := w.namespaces.checkClient(ctx, req.Resource.GVR.GroupResource(), req.Name, req.Namespace, creating); err != nil {
		return err
	}
	if creating {
		return w.namespaces.ensureTarget(ctx, req.Resource.Target, req.Namespace)
	}
	return nil
}

func (w *Writer) create(ctx context.Context, req *Request) (*Response, error) {
	obj, err := decodeObject(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := w.owner.stampObject(obj); err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := w.checkNamespace(ctx, req, true); err != nil {
		return nil, err
	}
	return w.send(ctx, req, http.MethodPost, req.Query, "application/json", body)
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
	if err := w.owner.stampObject(obj); err != nil {
		return nil, err
	}
	if checked != nil {
		// The UID in the body is a precondition of the update: it cannot
		// land on an object recreated since the check. A UID the caller
		// set stands (the target enforces it just the same).
		meta, _ := metadataOf(obj)
		if uid, _ := meta["uid"].(string); uid == "" {
			meta["uid"] = checked.UID
		}
	}
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
	gr := req.Resource.GVR.GroupResource()
	var body []byte
	switch patchType {
	case types.JSONPatchType:
		current := checked
		if current == nil {
			if current, err = w.lookup(ctx, req, false); err != nil {
				return nil, err
			}
			if current == nil {
				return nil, apierrors.NewNotFound(gr, req.Name)
			}
		}
		body, err = w.owner.stampJSONPatch(gr, req.Name, req.Body, current.JSON, uid)
		if apierrors.IsInvalid(err) && checked != nil {
			// The mirror may be behind the target: try its current state.
			if fresh, lookupErr := w.lookup(ctx, req, true); lookupErr == nil && fresh != nil {
				body, err = w.owner.stampJSONPatch(gr, req.Name, req.Body, fresh.JSON, uid)
			}
		}
	default:
		body, err = w.stampDocumentPatch(ctx, req, patchType, checked, uid)
	}
	if err != nil {
		return nil, err
	}
	resp, err := w.send(ctx, req, http.MethodPatch, req.Query, req.ContentType, body)
	if err != nil {
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

// stampDocumentPatch stamps the owner labels (and the checked UID) on a
// merge patch or an apply configuration.
func (w *Writer) stampDocumentPatch(ctx context.Context, req *Request, patchType types.PatchType, checked *store.Object, uid string) ([]byte, error) {
	apply := patchType == types.ApplyYAMLPatchType
	doc, err := decodeDocument(ctx, req.Body, apply, req.Query.Get("fieldValidation"))
	if err != nil {
		return nil, err
	}
	patch, ok := doc.(map[string]any)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch is not a JSON object: %s", summarize(req.Body)))
	}
	if apply {
		err = w.owner.stampObject(patch)
	} else {
		current := map[string]string(nil)
		if checked != nil {
			current = checked.Labels
		} else if o, _, ok := req.Resource.Cache.Get(req.Namespace, req.Name); ok {
			current = o.Labels
		}
		err = w.owner.stampMergePatch(patch, current)
	}
	if err != nil {
		return nil, err
	}
	if uid != "" {
		meta, _ := metadataOf(patch)
		meta["uid"] = uid
	}
	return json.Marshal(patch)
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
	body := req.Body
	if checked != nil {
		if opts.Preconditions == nil {
			opts.Preconditions = &metav1.Preconditions{}
		}
		if opts.Preconditions.UID != nil && string(*opts.Preconditions.UID) != checked.UID {
			return nil, apierrors.NewConflict(req.Resource.GVR.GroupResource(), req.Name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *opts.Preconditions.UID, checked.UID))
		}
		uid := types.UID(checked.UID)
		opts.Preconditions.UID = &uid
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}
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
		return nil, err
	}
	return w.maskLostPrecondition(ctx, req, checked, resp)
}

func (w *Writer) deleteCollection(ctx context.Context, req *Request) (*Response, error) {
	query := url.Values{}
	for k, v := range req.Query {
		query[k] = v
	}
	if req.Resource.Access == config.AccessOwned {
		selector, err := labels.Parse(query.Get("labelSelector"))
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		reqs, _ := req.Resource.Selector.Requirements()
		query.Set("labelSelector", selector.Add(reqs...).String())
	}
	contentType := ""
	if len(req.Body) > 0 {
		contentType = req.ContentType
	}
	return w.send(ctx, req, http.MethodDelete, query, contentType, req.Body)
}

// waitForMirror makes a successful write readable: it waits, bounded, until
// the mirror holds the resourceVersion the target answered (for a
// deletecollection, the newest of the deleted objects'). A wait that times
// out is logged, and the write still succeeds: it did happen.
func (w *Writer) waitForMirror(ctx context.Context, req *Request, resp *Response) {
	if resp.Code < 200 || resp.Code > 299 || len(req.Query["dryRun"]) > 0 {
		return
	}
	var answer struct {
		Kind     string `json:"kind"`
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(resp.Body, &answer); err != nil || answer.Kind == "Status" {
		return
	}
	var rv uint64
	parse := func(s string) {
		var v uint64
		if _, err := fmt.Sscan(s, &v); err == nil && v > rv {
			rv = v
		}
	}
	if req.Verb == "deletecollection" {
		for _, item := range answer.Items {
			parse(item.Metadata.ResourceVersion)
		}
	} else {
		parse(answer.Metadata.ResourceVersion)
	}
	if rv == 0 {
		return
	}
	wait, cancel := context.WithTimeout(ctx, w.readYourWritesTimeout)
	defer cancel()
	start := time.Now()
	if err := req.Resource.Cache.WaitForResourceVersion(wait, rv); err != nil {
		w.log.Warn("the mirror did not catch up with a write in time; answering anyway",
			zap.String("target", req.Resource.Target.ID), zap.Stringer("resource", req.Resource.GVR),
			zap.String("namespace", req.Namespace), zap.String("name", req.Name),
			zap.Uint64("resourceVersion", rv), zap.Duration("waited", time.Since(start)), zap.Error(err))
	}
}
