package server

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/writethrough"
)

// write passes a mutation to the write-through and answers with the
// target's own answer.
func (h *apiHandler) write(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	if h.writer == nil {
		writeError(w, apierrors.NewMethodNotSupported(groupResource(res), info.Verb))
		return
	}
	// The paths the kube-apiserver does not route for a verb answer 405.
	if (info.Verb == "create" && (info.Name != "" || info.Subresource != "")) ||
		(info.Verb == "update" || info.Verb == "patch") && info.Name == "" ||
		(info.Verb == "delete" || info.Verb == "deletecollection") && info.Subresource != "" {
		writeError(w, apierrors.NewMethodNotSupported(groupResource(res), info.Verb))
		return
	}
	body, err := writethrough.ReadBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	caller, _ := request.UserFrom(r.Context())
	resp, err := h.writer.Write(r.Context(), &writethrough.Request{
		Resource:    res,
		Verb:        info.Verb,
		Namespace:   info.Namespace,
		Name:        info.Name,
		Subresource: info.Subresource,
		Path:        r.URL.Path,
		Query:       r.URL.Query(),
		ContentType: writethrough.MediaType(r.Header.Get("Content-Type")),
		Body:        body,
		User:        caller,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	if resp.ContentType != "" {
		w.Header().Set("Content-Type", resp.ContentType)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(resp.Code)
	_, _ = w.Write(resp.Body)
}
