package server

import (
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// outputFormat is what a read answers with, chosen from the Accept header.
type outputFormat int

const (
	// formatJSON is the objects as JSON: an object or an <Kind>List.
	formatJSON outputFormat = iota
	// formatTable is a meta.k8s.io/v1 Table, as kubectl get asks for.
	formatTable
)

// negotiate picks the first media type of the Accept header that crproxy
// can produce. Custom resources are JSON only: protobuf alone is 406.
func negotiate(r *http.Request) (outputFormat, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return formatJSON, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "application/json", "application/*", "*/*":
		default:
			continue
		}
		switch params["as"] {
		case "":
			return formatJSON, nil
		case "Table":
			if params["g"] == metav1.GroupName && (params["v"] == "v1" || params["v"] == "v1beta1") {
				return formatTable, nil
			}
		}
	}
	return 0, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotAcceptable,
		Reason:  metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
	}}
}
