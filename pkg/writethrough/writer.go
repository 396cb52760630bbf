package writethrough

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// Defaults of Options.
const (
	DefaultTargetTimeout = 30 * time.Second
)

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

// reachable is the gate every write passes once its input is valid (bad
// input is 400 whatever the target's state, as at a kube-apiserver whose
// etcd is down): a 503 with Retry-After while the target is unreachable,
// after one on-demand probe at most every 500 ms (CheckReachable).
func reachable(ctx context.Context, req *Request) error {
	since, down := req.Resource.Target.Connection.CheckReachable(ctx)
	if !down {
		return nil
	}
	what := "nothing was written (writes are not queued)"
	if req.Verb == "get" {
		what = "the " + req.Subresource + " subresource is read from the target"
	}
	e := apierrors.NewServiceUnavailable(fmt.Sprintf("target %s unreachable since %s; %s",
		req.Resource.Target.ID, since.UTC().Format(time.RFC3339), what))
	e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
	return e
}

func (w *Writer) caller(req *Request) string {
	if req.User == nil {
		return ""
	}
	return req.User.GetName()
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
