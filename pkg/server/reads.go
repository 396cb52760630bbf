package server

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// readRequest negotiates the output format and parses the query of a
// read; on error it has answered and ok is false.
func readRequest(w http.ResponseWriter, r *http.Request, watch bool) (out output, opts *readOptions, ok bool) {
	out, err := negotiate(r)
	if err == nil {
		opts, err = parseReadOptions(r.URL.Query(), watch)
	}
	if err != nil {
		writeError(w, err)
		return output{}, nil, false
	}
	return out, opts, true
}

func (h *apiHandler) get(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	out, opts, ok := readRequest(w, r, false)
	if !ok {
		return
	}
	// The apiserver converts after reading: a missing object is 404
	// before a conversion that cannot apply is 406.
	obj, err := res.Object(r.Context(), opts.read(info.Namespace), info.Namespace, info.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	switch out.format {
	case formatTable:
		h.writeTable(w, r, res, []*store.Object{obj}, nil)
	case formatMetadata:
		writeMetadataObject(w, obj, out)
	case formatMetadataList:
		writeError(w, conversionError(out, false))
	default:
		writeRawJSON(w, http.StatusOK, obj.JSON)
	}
}

func (h *apiHandler) list(w http.ResponseWriter, r *http.Request, res *mirror.Resource, info *request.RequestInfo) {
	out, opts, ok := readRequest(w, r, false)
	if !ok {
		return
	}
	snap, err := res.List(r.Context(), opts.read(info.Namespace))
	if err != nil {
		writeError(w, err)
		return
	}
	var afterNamespace, afterName string
	if opts.continue_ != nil {
		afterNamespace, afterName = opts.continue_.Namespace, opts.continue_.Name
	}
	limit := int(opts.Limit)
	var items []*store.Object
	more := false
	snap.Ascend(info.Namespace, afterNamespace, afterName, func(o *store.Object) bool {
		if !opts.matches(o) {
			return true
		}
		if limit > 0 && len(items) == limit {
			more = true
			return false
		}
		items = append(items, o)
		return true
	})
	meta := metav1.ListMeta{ResourceVersion: strconv.FormatUint(snap.ResourceVersion(), 10)}
	if more {
		last := items[len(items)-1]
		meta.Continue = encodeContinue(snap.ResourceVersion(), last.Namespace, last.Name)
	}
	switch out.format {
	case formatTable:
		h.writeTable(w, r, res, items, &meta)
	case formatMetadataList:
		writeMetadataList(w, items, meta, out)
	case formatMetadata:
		writeError(w, conversionError(out, true))
	default:
		writeList(w, res, items, meta)
	}
}

// writeList streams a <Kind>List whose items are the stored JSON, copied,
// never re-encoded.
func writeList(w http.ResponseWriter, res *mirror.Resource, items []*store.Object, meta metav1.ListMeta) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `{"apiVersion":%q,"kind":%q,"metadata":{"resourceVersion":%q`, res.GVR.GroupVersion().String(), res.API().Kind+"List", meta.ResourceVersion)
	if meta.Continue != "" {
		fmt.Fprintf(bw, `,"continue":%q`, meta.Continue)
	}
	_, _ = bw.WriteString(`},"items":[`)
	for i, o := range items {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.Write(o.JSON)
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}
