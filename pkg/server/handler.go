package server

import (
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/writethrough"
)

// apiHandler routes the Kubernetes API paths of the proxied group/versions.
type apiHandler struct {
	mirror   *mirror.Mirror
	platform *platform.Checker
	writer   *writethrough.Writer
	log      *zap.Logger
	tables   tableConvertors
	openapi  openAPICache
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok {
		writeError(w, apierrors.NewInternalError(fmt.Errorf("no request info")))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/openapi/") {
		h.openAPI(w, r)
		return
	}
	if !info.IsResourceRequest {
		h.discovery(w, r, info)
		return
	}
	gv := h.mirror.GroupVersion(info.APIGroup, info.APIVersion)
	if gv == nil {
		notFound(w, r)
		return
	}
	res := gv.Resource(info.Resource)
	if res == nil || !servesScope(res, info) {
		notFound(w, r)
		return
	}
	if info.Subresource != "" && info.Name == "" {
		notFound(w, r)
		return
	}
	if !res.ServesSubresource(info.Subresource) {
		// As the CRD handler answers a subresource its CRD does not
		// have, before it looks for the object.
		writeError(w, apierrors.NewNotFound(groupResource(res), info.Name))
		return
	}
	// The platform's permission to use the target (allowed without a
	// platform section): 403 without it, 503 while it cannot be asked,
	// except reads the last answer allowed, which are warned.
	d := h.platform.Decision(res.Target.ID)
	write := info.Verb != "get" && info.Verb != "list" && info.Verb != "watch"
	if err := platform.Admit(groupResource(res), d, write); err != nil {
		writeError(w, err)
		return
	}
	if warn := platform.Warning(d); warn != "" {
		warning.AddWarning(r.Context(), "crproxy", warn)
	}
	if !write {
		// As the target's CRD handler adds them to every request of a
		// deprecated version (writes carry the target's own).
		for _, text := range res.VersionWarnings() {
			warning.AddWarning(r.Context(), "", text)
		}
	}
	switch info.Verb {
	case "get":
		if info.Subresource == "scale" {
			// The target computes a Scale from its CRD's replica paths,
			// which crproxy does not read: the write-through carries the
			// read there, with the ownership check of a write.
			h.write(w, r, res, info)
			return
		}
		h.get(w, r, res, info)
	case "list":
		h.list(w, r, res, info)
	case "watch":
		h.watch(w, r, res, info)
	case "create", "update", "patch", "delete", "deletecollection":
		h.write(w, r, res, info)
	default:
		writeError(w, apierrors.NewMethodNotSupported(groupResource(res), info.Verb))
	}
}

// notFound is the apiserver's answer to a path it does not serve (its
// notfoundhandler's, once ready): a plain-text 404, not a Status. Clients
// such as kubectl turn it into "the server could not find the requested
// resource" themselves.
func notFound(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// servesScope tells whether res serves info's path as the CRD handler
// does: a cluster-scoped resource no namespaced path, a namespaced one no
// path without a namespace but its lists and watches across all
// namespaces (a create or deletecollection there is a 404 too).
func servesScope(res *mirror.Resource, info *request.RequestInfo) bool {
	if !res.API().Namespaced {
		return info.Namespace == ""
	}
	return info.Namespace != "" || info.Verb == "list" || info.Verb == "watch"
}

func groupResource(res *mirror.Resource) schema.GroupResource { return res.GVR.GroupResource() }
