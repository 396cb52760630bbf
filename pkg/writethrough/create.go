package writethrough

import (
	"context"
	"encoding/json"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// createVerb creates an object: the caller's object with the owner labels
// stamped and its ownerReferences in the target's form, into a namespace
// the client has (created at the target when missing).
type createVerb struct {
	noFinish
	obj map[string]any
}

func (v *createVerb) decode(ctx context.Context, req *Request) (err error) {
	v.obj, err = decodeObject(ctx, req)
	return err
}

func (v *createVerb) rules(*Request) rules {
	return rules{namespace: true, mayCreate: true}
}

func (v *createVerb) prepare(ctx context.Context, w *Writer, op *operation) (*Response, error) {
	if err := w.owner.stampObject(v.obj); err != nil {
		return nil, err
	}
	meta, _ := metadataOf(v.obj)
	if err := translator(op.req).wholeObject(meta, nil); err != nil {
		return nil, err
	}
	op.method, op.contentType = http.MethodPost, "application/json"
	var err error
	op.body, err = v.build(ctx, w, op, nil)
	return nil, err
}

func (v *createVerb) build(context.Context, *Writer, *operation, *store.Object) ([]byte, error) {
	body, err := json.Marshal(v.obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return body, nil
}
