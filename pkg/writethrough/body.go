package writethrough

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/warning"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// objectMediaTypes are the bodies a create or update of a custom resource
// accepts, in the kube-apiserver's order (the first is the default).
var objectMediaTypes = []string{"application/json", "application/yaml"}

// decodeDocument decodes a JSON or YAML patch (a merge patch, an apply
// configuration) into generic JSON values, integers kept as int64. A body
// that does not decode answers 400 as the kube-apiserver's patch handler
// does: "error decoding YAML: ..." or "error decoding patch: ...".
// Duplicate fields are reported by the request's fieldValidation as the
// kube-apiserver does: Strict fails with 400, Warn (the default) adds a
// warning, Ignore drops them.
func decodeDocument(ctx context.Context, body []byte, yamlBody bool, fieldValidation string) (any, error) {
	doc, strictErr, err := decodeWith(ctx, body, yamlBody, fieldValidation, func(err error) error {
		if yamlBody {
			return errDecodingYAML(err)
		}
		return apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	})
	if err != nil {
		return nil, err
	}
	if strictErr != "" {
		return nil, apierrors.NewBadRequest(strictErr)
	}
	return doc, nil
}

// errDecodingYAML is the kube-apiserver's 400 for an apply configuration
// that is not YAML (handlers/patch.go applyPatcher).
func errDecodingYAML(err error) error {
	return apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
}

// decodeWith decodes a JSON or YAML document; decodeErr makes the answer
// to a body that does not decode at all (malformed, nested past the
// decoders' 10000 levels). Under fieldValidation=Strict, duplicate and
// malformed fields are returned as strictErr, the kube-apiserver's
// "strict decoding error: ..." text, for the caller to answer once the
// checks the kube-apiserver makes before it have passed.
func decodeWith(ctx context.Context, body []byte, yamlBody bool, fieldValidation string, decodeErr func(error) error) (doc any, strictErr string, err error) {
	var strictErrs []error
	data := body
	if yamlBody {
		converted, strictErr := yaml.YAMLToJSONStrict(body)
		if strictErr != nil {
			var err error
			converted, err = yaml.YAMLToJSON(body)
			if err != nil {
				return nil, "", decodeErr(err)
			}
			strictErrs = append(strictErrs, strictErr)
		}
		data = converted
	}
	errs, err := sigsjson.UnmarshalStrict(data, &doc, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, "", decodeErr(err)
	}
	strictErrs = append(strictErrs, errs...)
	if len(strictErrs) > 0 {
		switch fieldValidation {
		case metav1.FieldValidationStrict:
			msgs := make([]string, len(strictErrs))
			for i, e := range strictErrs {
				msgs[i] = e.Error()
			}
			return doc, "strict decoding error: " + strings.Join(msgs, ", "), nil
		case metav1.FieldValidationIgnore:
		default:
			for _, e := range strictErrs {
				warning.AddWarning(ctx, "", e.Error())
			}
		}
	}
	return doc, "", nil
}

// decodeObject decodes the body of a create or update and checks it the
// way the kube-apiserver does before anything is stored: a JSON or YAML
// object of the resource's group/version and kind, whose namespace (filled
// in when empty) and, for an update, name match the URL.
func decodeObject(ctx context.Context, req *Request) (map[string]any, error) {
	mediaType := req.ContentType
	if mediaType == "" {
		mediaType = objectMediaTypes[0]
	}
	if mediaType != "application/json" && mediaType != "application/yaml" {
		return nil, negotiation.NewUnsupportedMediaTypeError(objectMediaTypes)
	}
	res := req.Resource
	wantGVK := req.bodyKind()
	yamlBody := mediaType == "application/yaml"
	doc, strictErr, err := decodeWith(ctx, req.Body, yamlBody, req.Query.Get("fieldValidation"), func(err error) error {
		// As the kube-apiserver's create and update handlers answer
		// (transformDecodeError, the serializer's Interpret).
		if !yamlBody {
			err = fmt.Errorf("couldn't get version/kind; json parse error: %v", err)
		}
		return apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v (%s)", wantGVK.Kind, err, summarizeData(req.Body)))
	})
	if err != nil {
		return nil, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): the body is not a JSON object (%s)", wantGVK.Kind, summarize(req.Body)))
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if kind == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Object 'Kind' is missing in '%s'", summarize(req.Body)))
	}
	if strictErr != "" {
		// As the create and update handlers answer (transformDecodeError):
		// the decoder reports it before the kind and group/version are
		// compared with the resource's, into an object of the body's kind.
		bodyGV, _ := schema.ParseGroupVersion(apiVersion)
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %s", kind, bodyGV.Version, kind, strictErr))
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || apiVersion == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", apiVersion, wantGVK.GroupVersion()))
	}
	if gv != wantGVK.GroupVersion() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", apiVersion, wantGVK.GroupVersion()))
	}
	if kind != wantGVK.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: the kind in the data does not match the resource", kind, gv.Version, wantGVK.Kind))
	}
	meta, err := metadataOf(obj)
	if err != nil {
		return nil, err
	}
	name, _ := meta["name"].(string)
	namespace, _ := meta["namespace"].(string)
	if req.Name != "" && name != req.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", name, req.Name))
	}
	switch {
	case !res.API().Namespaced:
		delete(meta, "namespace")
	case namespace == "":
		meta["namespace"] = req.Namespace
	case namespace != req.Namespace:
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return obj, nil
}

// metadataOf returns obj's metadata, creating it when absent; a metadata
// that is not an object is a 400.
func metadataOf(obj map[string]any) (map[string]any, error) {
	switch m := obj["metadata"].(type) {
	case map[string]any:
		return m, nil
	case nil:
		created := map[string]any{}
		obj["metadata"] = created
		return created, nil
	default:
		return nil, apierrors.NewBadRequest("metadata of the object must be a JSON object")
	}
}

// summarizeData is the first bytes of a body for a decoding error, as the
// kube-apiserver shows them (handlers/rest.go summarizeData): as text when
// it starts like a JSON object, else in hex.
func summarizeData(body []byte) string {
	const max = 30
	switch {
	case len(body) == 0:
		return "<empty>"
	case body[0] == '{':
		return summarize(body)
	case len(body) > max:
		return hex.EncodeToString(body[:max]) + " ..."
	default:
		return hex.EncodeToString(body)
	}
}

// summarize is the first bytes of a body, for error messages.
func summarize(body []byte) string {
	const max = 30
	if len(body) <= max {
		return string(body)
	}
	return string(body[:max]) + " ..."
}
