package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// readOptions is a read request's parsed query.
type readOptions struct {
	metav1.ListOptions
	labels labels.Selector
	// mustHave rules objects out before labels is asked (signaturesOf).
	mustHave [][]store.LabelSignature
	fields   fields.Selector
	// rv is ResourceVersion as a number; 0 for "" and "0".
	rv        uint64
	continue_ *continueToken
}

// selectName narrows a watch of one object (/watch/.../name, or a
// metadata.name field selector, which RequestInfo reads as the name) to that
// name, as kube-apiserver does: a field selector must then select exactly
// that name.
func (o *readOptions) selectName(name string) error {
	if name == "" {
		return nil
	}
	if !o.fields.Empty() {
		if selected, ok := o.fields.RequiresExactMatch("metadata.name"); !ok || selected != name {
			return apierrors.NewBadRequest("fieldSelector metadata.name doesn't match requested name")
		}
		return nil
	}
	o.fields = fields.OneTermEqualSelector("metadata.name", name)
	o.FieldSelector = o.fields.String()
	return nil
}

// parseReadOptions decodes and validates the query of a get, list or watch
// as a kube-apiserver does, answering 400 for what it would reject.
func parseReadOptions(query url.Values, watch bool) (*readOptions, error) {
	var opts readOptions
	if err := metav1.Convert_url_Values_To_v1_ListOptions(&query, &opts.ListOptions, nil); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	var err error
	if opts.labels, err = labels.Parse(opts.LabelSelector); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	opts.mustHave = signaturesOf(opts.labels)
	if opts.fields, err = fields.ParseSelector(opts.FieldSelector); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	for _, req := range opts.fields.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	if opts.ResourceVersion != "" {
		if opts.rv, err = strconv.ParseUint(opts.ResourceVersion, 10, 64); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q: %v", opts.ResourceVersion, err))
		}
	}
	var errs field.ErrorList
	match := opts.ResourceVersionMatch
	switch match {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), match, []string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan), ""}))
	}
	if match != "" && opts.ResourceVersion == "" && !(watch && opts.SendInitialEvents != nil) {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
	}
	if match == metav1.ResourceVersionMatchExact && opts.ResourceVersion == "0" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
	}
	if opts.Continue != "" && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersion"), "specifying resource version is not allowed when using continue"))
	}
	if opts.Continue != "" && match != "" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
	}
	if watch {
		if opts.SendInitialEvents != nil {
			if match != metav1.ResourceVersionMatchNotOlderThan {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
			}
			if !opts.AllowWatchBookmarks {
				errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
			}
		} else if match != "" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		}
	} else if opts.SendInitialEvents != nil {
		errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
	}
	if opts.Limit < 0 {
		errs = append(errs, field.Invalid(field.NewPath("limit"), opts.Limit, "must be greater than or equal to 0"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
	}
	if opts.Continue != "" {
		if opts.continue_, err = decodeContinue(opts.Continue); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
		}
	}
	return &opts, nil
}

// matches reports whether obj passes the caller's selectors. The mirror's
// own selection (owned mode) was applied before obj reached the cache, so a
// caller's selector can only narrow it.
func (o *readOptions) matches(obj *store.Object) bool {
	for _, anyOf := range o.mustHave {
		if !mayHaveAny(obj, anyOf) {
			return false
		}
	}
	if !o.labels.Empty() && !o.labels.Matches(labels.Set(obj.Labels)) {
		return false
	}
	if !o.fields.Empty() && !o.fields.Matches(fields.Set{"metadata.name": obj.Name, "metadata.namespace": obj.Namespace}) {
		return false
	}
	return true
}

// signaturesOf is what an object must carry for sel to match it, as label
// signatures: per requirement that needs a key (exists, gt, lt) or a key
// with one of some values (=, ==, in), the signatures of which the object
// must have one. Requirements that an object without the key meets (!=,
// notin, !) need nothing.
func signaturesOf(sel labels.Selector) [][]store.LabelSignature {
	reqs, _ := sel.Requirements()
	var out [][]store.LabelSignature
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			var anyOf []store.LabelSignature
			for v := range r.Values() {
				anyOf = append(anyOf, store.LabelPairSignature(r.Key(), v))
			}
			out = append(out, anyOf)
		case selection.Exists, selection.GreaterThan, selection.LessThan:
			out = append(out, []store.LabelSignature{store.LabelKeySignature(r.Key())})
		}
	}
	return out
}

// mayHaveAny is whether obj may carry one of the signatures.
func mayHaveAny(obj *store.Object, anyOf []store.LabelSignature) bool {
	for _, s := range anyOf {
		if obj.MayHave(s) {
			return true
		}
	}
	return false
}

// continueToken is where the next page of a paginated list starts: after
// the key (namespace, name) in the snapshot at resourceVersion RV. Its
// encoding follows the kube-apiserver's (base64 of JSON with a version).
type continueToken struct {
	Version         string `json:"v"`
	ResourceVersion uint64 `json:"rv"`
	Namespace       string `json:"ns"`
	Name            string `json:"start"`
}

const continueTokenVersion = "meta.k8s.io/v1"

func encodeContinue(rv uint64, namespace, name string) string {
	data, _ := json.Marshal(continueToken{Version: continueTokenVersion, ResourceVersion: rv, Namespace: namespace, Name: name})
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(s string) (*continueToken, error) {
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var t continueToken
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	if t.Version != continueTokenVersion {
		return nil, fmt.Errorf("server does not recognize this encoded key")
	}
	if t.ResourceVersion == 0 || t.Name == "" {
		return nil, fmt.Errorf("incomplete continue key")
	}
	return &t, nil
}

// exact reports whether a list asks for the state at its resourceVersion
// exactly: resourceVersionMatch=Exact, or, as the kube-apiserver still
// reads it, a first page (limit set) at resourceVersion N without a
// resourceVersionMatch.
func (o *readOptions) exact() bool {
	if o.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
		return true
	}
	return o.ResourceVersionMatch == "" && o.Limit > 0 && o.continue_ == nil && o.ResourceVersion != "" && o.ResourceVersion != "0"
}

// read is what the query asks of the mirror, in namespace ("" for all).
func (o *readOptions) read(namespace string) mirror.Read {
	read := mirror.Read{
		Freshness:         mirror.Freshness{Consistent: o.ResourceVersion == "", NotOlderThan: o.rv},
		Exact:             o.exact(),
		SendInitialEvents: o.SendInitialEvents,
		Scope:             mirror.Scope{LabelSelector: o.LabelSelector, FieldSelector: o.FieldSelector, Matches: o.matches},
	}
	read.Scope.Namespace = namespace
	if o.continue_ != nil {
		read.Continue = o.continue_.ResourceVersion
	}
	return read
}
