package writethrough

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// MaxBodyBytes is the largest request body accepted, as the kube-apiserver
// limits it (--max-request-bytes' default for object bodies).
const MaxBodyBytes = 3 * 1024 * 1024

// Request is one mutation of a proxied resource, as the server parsed it.
type Request struct {
	// Resource is the proxied resource written to.
	Resource *mirror.Resource
	// Verb is the Kubernetes verb: create, update, patch, delete or
	// deletecollection; or get of the scale subresource, which only the
	// target can compute (from its CRD's replica paths).
	Verb string
	// Namespace, Name and Subresource come from the URL ("" when absent).
	Namespace, Name, Subresource string
	// Path is the request's API path, which is the same at the target.
	Path string
	// Query is the request's query; it passes through (owned mode narrows
	// a deletecollection's labelSelector).
	Query url.Values
	// ContentType is the body's media type, without parameters.
	ContentType string
	// Body is the request body, at most MaxBodyBytes.
	Body []byte
	// User is the caller in the client cluster, recorded at the target as
	// an impersonation extra.
	User user.Info

	// checkAtTarget makes every lookup ask the target, not the mirror: set
	// when a write runs again because the mirror's copy was of an object
	// since replaced (errCheckedReplaced).
	checkAtTarget bool
}

// Response is the target's answer, to be passed back unchanged.
type Response struct {
	// Code is the HTTP status code.
	Code int
	// ContentType is the target's Content-Type.
	ContentType string
	// Body is the target's body: the object, a list or a Status.
	Body []byte

	// viewed says Body is in the client's view already (an answer crproxy
	// composed); otherwise Write turns a 2xx answer into the view.
	viewed bool
}

// ReadBody reads a request body up to MaxBodyBytes; a larger body answers
// 413 RequestEntityTooLarge "Request entity too large: limit is 3145728",
// as the kube-apiserver does (handlers/rest.go limitedReadBody).
//
// A server-side apply body is decoded once here too: an apply may create
// the namespace at the target before its body is decoded, and YAML that
// cannot be decoded (too deep, say) must not write anything. The answer is
// the kube-apiserver's 400 "error decoding YAML: ...".
func ReadBody(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	limited := &io.LimitedReader{R: r.Body, N: MaxBodyBytes + 1}
	data, err := io.ReadAll(limited)
	if err != nil {
		return nil, apierrors.NewBadRequest("reading the request body: " + err.Error())
	}
	if limited.N <= 0 {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxBodyBytes))
	}
	if r.Method == http.MethodPatch && MediaType(r.Header.Get("Content-Type")) == string(types.ApplyYAMLPatchType) {
		if _, err := decodeDocument(r.Context(), data, true, metav1.FieldValidationIgnore); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// MediaType is the media type of a Content-Type header without its
// parameters ("" when the header is empty or malformed).
func MediaType(contentType string) string {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mediaType
}

// scaleSubresource is the subresource whose body is an autoscaling/v1
// Scale the target computes from the object, not the object itself.
const scaleSubresource = "scale"

// scaleGVK is the kind of a scale subresource's body.
var scaleGVK = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}

// scale reports whether req addresses the scale subresource: its body is a
// Scale, whose metadata is not the object's (no labels or owners to stamp)
// and whose resourceVersion, not UID, is the target's precondition.
func (req *Request) scale() bool { return req.Subresource == scaleSubresource }

// bodyKind is the group/version/kind a create's or update's body must have.
func (req *Request) bodyKind() schema.GroupVersionKind {
	if req.scale() {
		return scaleGVK
	}
	return req.Resource.GVR.GroupVersion().WithKind(req.Resource.API().Kind)
}
