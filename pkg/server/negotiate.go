package server

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
)

// outputFormat is what a read answers with, chosen from the Accept header.
type outputFormat int

const (
	// formatJSON is the objects as JSON: an object or an <Kind>List.
	formatJSON outputFormat = iota
	// formatTable is a meta.k8s.io Table, as kubectl get asks for.
	formatTable
	// formatMetadata is a meta.k8s.io PartialObjectMetadata per object, as
	// client-go's metadata client asks for on a get and a watch.
	formatMetadata
	// formatMetadataList is a meta.k8s.io PartialObjectMetadataList, as the
	// metadata client asks for on a list.
	formatMetadataList
)

// output is the negotiated answer of a read.
type output struct {
	format outputFormat
	// metaVersion is the meta.k8s.io version (v1 or v1beta1) of a Table
	// or PartialObjectMetadata(List), "" for formatJSON.
	metaVersion string
}

// metaAPIVersion is the apiVersion of the meta.k8s.io kinds of o.
func (o output) metaAPIVersion() string { return metav1.GroupName + "/" + o.metaVersion }

// servedMediaTypes is what crproxy encodes: JSON only (custom resources
// have no protobuf encoding of their own, and crproxy leaves the
// PartialObjectMetadata protobuf to clients' JSON fallback). The stream
// serializer is a marker: negotiation only checks that there is one, which
// lets `;stream=watch` through as the apiserver does.
var servedMediaTypes = []runtime.SerializerInfo{{
	MediaType:        runtime.ContentTypeJSON,
	MediaTypeType:    "application",
	MediaTypeSubType: "json",
	EncodesAsText:    true,
	StreamSerializer: &runtime.StreamSerializerInfo{EncodesAsText: true},
}}

// notAcceptable is the apiserver's 406 when no Accept clause can be served
// (negotiation.NewNotAcceptableError over servedMediaTypes).
var notAcceptable = negotiation.NewNotAcceptableError([]string{runtime.ContentTypeJSON})

// customResourceRestrictions are the kube-apiserver's content negotiation
// rules of a custom resource endpoint (handlers.RequestScope of
// apiextensions-apiserver): no conversion in a served media type, Table in
// JSON (or YAML, which crproxy does not serve), PartialObjectMetadata and
// PartialObjectMetadataList in any, all in meta.k8s.io v1 or v1beta1.
type customResourceRestrictions struct{}

func (customResourceRestrictions) AllowsMediaTypeTransform(mimeType, mimeSubType string, gvk *schema.GroupVersionKind) bool {
	if gvk == nil {
		return mimeType == "application" && mimeSubType == "json"
	}
	if gvk.Group != metav1.GroupName || (gvk.Version != "v1" && gvk.Version != "v1beta1") {
		return false
	}
	switch gvk.Kind {
	case "Table":
		return mimeType == "application" && (mimeSubType == "json" || mimeSubType == "yaml")
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		return true
	}
	return false
}

func (customResourceRestrictions) AllowsServerVersion(v string) bool { return v == "v1" }
func (customResourceRestrictions) AllowsStreamSchema(s string) bool  { return s == "watch" }

// kubectlTableAccept is what kubectl get sends (its first clause wins).
const kubectlTableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// negotiate picks the answer of a read from the Accept header with the
// apiserver's own negotiation (clauses in preference order, the first that
// crproxy can serve wins), so a protobuf clause first falls back to the
// JSON one after it. A header without any servable clause is 406.
func negotiate(r *http.Request) (output, error) {
	accept := r.Header.Get("Accept")
	// The common headers skip parsing: plain JSON reads and kubectl get
	// must not pay for the formats they do not use.
	switch accept {
	case "", runtime.ContentTypeJSON:
		return output{format: formatJSON}, nil
	case kubectlTableAccept:
		return output{format: formatTable, metaVersion: "v1"}, nil
	}
	opts, ok := negotiation.NegotiateMediaTypeOptions(accept, servedMediaTypes, customResourceRestrictions{})
	if !ok {
		return output{}, notAcceptable
	}
	if opts.Convert == nil {
		return output{format: formatJSON}, nil
	}
	out := output{metaVersion: opts.Convert.Version}
	switch opts.Convert.Kind {
	case "Table":
		out.format = formatTable
	case "PartialObjectMetadata":
		out.format = formatMetadata
	default: // PartialObjectMetadataList, the only other kind allowed
		out.format = formatMetadataList
	}
	return out, nil
}

// conversionError is the apiserver's answer to a conversion that
// negotiation allowed but the verb's result cannot take
// (handlers.asPartialObjectMetadata and asPartialObjectMetadataList): a
// list as PartialObjectMetadata is 406; an object as
// PartialObjectMetadataList is a 500 for a custom resource, whose
// unstructured object passes for a list until its items are walked
// (meta.EachListItem's plain error, which the apiserver passes on as is).
func conversionError(out output, list bool) error {
	switch {
	case out.format == formatMetadata && list:
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusNotAcceptable,
			Reason:  metav1.StatusReasonNotAcceptable,
			Message: "you requested PartialObjectMetadata, but the requested object is a list (*unstructured.UnstructuredList)",
		}}
	case out.format == formatMetadataList && !list:
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusInternalServerError,
			Reason:  metav1.StatusReasonUnknown,
			Message: "content is not a list",
		}}
	}
	return nil
}

// String names the output for logs and test failures.
func (o output) String() string {
	switch o.format {
	case formatTable:
		return "Table " + o.metaVersion
	case formatMetadata:
		return "PartialObjectMetadata " + o.metaVersion
	case formatMetadataList:
		return "PartialObjectMetadataList " + o.metaVersion
	}
	return "JSON"
}
