package writethrough

import (
	"fmt"
	"net/http"
	"sync/atomic"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/config"
)

// The limits crproxy applies to what it decodes or applies itself, the
// kube-apiserver's own (k8s.io/apiserver v0.36): crproxy answers for the
// target, so bad input is refused the way the target would refuse it, and
// before anything is sent there. JSON nesting is limited by the decoders
// themselves (encoding/json and sigs.k8s.io/json: 10000 levels, "exceeded
// max depth"; go.yaml.in/yaml/v2: 10000 levels, "exceeded max depth of
// 10000").
const (
	// MaxJSONPatchOperations is the largest number of operations of one
	// JSON patch (handlers/patch.go maxJSONPatchOperations); more answer
	// 413 RequestEntityTooLarge.
	MaxJSONPatchOperations = 10000
	// MaxJSONPatchCopyBytes bounds what the copy operations of one JSON
	// patch may add to the document, in bytes of JSON (the
	// kube-apiserver's --max-request-bytes default, which server.Config
	// sets as JSONPatchMaxCopyBytes into jsonpatch.AccumulatedCopySizeLimit);
	// a patch past it answers 422.
	MaxJSONPatchCopyBytes = MaxBodyBytes
)

// jsonPatchStampOperations is the most operations stampJSONPatch adds to
// a caller's: the UID test and one add per owner label. A patch that
// cannot take them within the target's MaxJSONPatchOperations is applied
// locally instead (jsonPatchTouchesOwnership).
var jsonPatchStampOperations = 1 + len(config.Client{}.OwnerLabels())

func init() {
	// As the kube-apiserver does (k8s.io/apiserver/pkg/server/config.go,
	// GenericAPIServer.New): the limit is process-wide in json-patch v4,
	// and a lower one set by someone else stands.
	for {
		existing := atomic.LoadInt64(&jsonpatch.AccumulatedCopySizeLimit)
		if existing > 0 && existing < MaxJSONPatchCopyBytes {
			return
		}
		if atomic.CompareAndSwapInt64(&jsonpatch.AccumulatedCopySizeLimit, existing, MaxJSONPatchCopyBytes) {
			return
		}
	}
}

// jsonPatchOp is one operation as the kube-apiserver decodes it first
// (handlers/patch.go jsonPatchOp), for its error messages.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	From  string `json:"from"`
	Value any    `json:"value"`
}

// decodeJSONPatch decodes a JSON patch as the kube-apiserver does
// (jsonPatcher.applyJSPatch with the default fieldValidation): a body that
// is not a list of operations answers 400 "error decoding patch: ...",
// more than MaxJSONPatchOperations operations 413.
func decodeJSONPatch(body []byte) (jsonpatch.Patch, error) {
	var ops []jsonPatchOp
	if _, err := kjson.UnmarshalStrict(body, &ops); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	}
	patch, err := jsonpatch.DecodePatch(body)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if len(patch) > MaxJSONPatchOperations {
		return nil, errTooManyJSONPatchOperations(len(patch))
	}
	return patch, nil
}

// errTooManyJSONPatchOperations is the kube-apiserver's 413 for a JSON
// patch of n operations.
func errTooManyJSONPatchOperations(n int) error {
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("The allowed maximum operations in a JSON patch is %d, got %d", MaxJSONPatchOperations, n))
}

// applyJSONPatch applies a decoded JSON patch to doc; a patch that does not
// apply (a failed test, a missing path, copies past MaxJSONPatchCopyBytes)
// answers 422 Invalid exactly as the kube-apiserver answers: "the server
// rejected our request due to an error in our request", the cause kept on
// the server.
//
// The library panics on some malformed operations (a replace of the root
// without a value); that is bad input too, and answers the same 422.
func applyJSONPatch(patch jsonpatch.Patch, doc []byte) ([]byte, error) {
	patched, err := func() (_ []byte, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("the JSON patch cannot be applied: %v", r)
			}
		}()
		return patch.Apply(doc)
	}()
	if err != nil {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
	}
	return patched, nil
}
