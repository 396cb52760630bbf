package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// columnsTTL is how long a resource's printer columns are reused before the
// CRD is read again, while the mirror's discovery does not change.
const columnsTTL = time.Minute

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// tableConvertors caches one TableConvertor per resource.
type tableConvertors struct {
	mu      sync.Mutex
	entries map[schema.GroupVersionResource]tableConvertorEntry
}

type tableConvertorEntry struct {
	convertor *TableConvertor
	expires   time.Time
	// discovery is closed when the mirror's discovery changed since.
	discovery <-chan struct{}
}

// tableConvertor returns how to render res as a Table: the CRD's
// additionalPrinterColumns when the client identity may read the CRD at the
// target, otherwise NAME and AGE, as a CRD without columns gets.
func (h *apiHandler) tableConvertor(ctx context.Context, res *mirror.Resource) *TableConvertor {
	h.tables.mu.Lock()
	if h.tables.entries == nil {
		h.tables.entries = map[schema.GroupVersionResource]tableConvertorEntry{}
	}
	e, ok := h.tables.entries[res.GVR]
	h.tables.mu.Unlock()
	if ok && time.Now().Before(e.expires) && !isClosed(e.discovery) {
		return e.convertor
	}
	discovery := h.mirror.DiscoveryChanged()
	columns := h.printerColumns(ctx, res)
	convertor, err := NewTableConvertor(columns)
	if err != nil {
		h.log.Warn("unusable printer columns; printing NAME and AGE", zap.String("resource", res.GVR.String()), zap.Error(err))
		convertor, _ = NewTableConvertor(nil)
	}
	h.tables.mu.Lock()
	h.tables.entries[res.GVR] = tableConvertorEntry{convertor: convertor, expires: time.Now().Add(columnsTTL), discovery: discovery}
	h.tables.mu.Unlock()
	return convertor
}

func (h *apiHandler) printerColumns(ctx context.Context, res *mirror.Resource) []CustomResourceColumnDefinition {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	crd, err := res.Target.CRD(ctx, res.GVR.Resource+"."+res.GVR.Group)
	if err != nil {
		return nil
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		version, _ := v.(map[string]any)
		if version["name"] != res.GVR.Version {
			continue
		}
		raw, _ := version["additionalPrinterColumns"].([]any)
		var columns []CustomResourceColumnDefinition
		for _, c := range raw {
			m, _ := c.(map[string]any)
			var col CustomResourceColumnDefinition
			if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &col) == nil {
				columns = append(columns, col)
			}
		}
		return columns
	}
	return nil
}

// includeObjectPolicy reads the Table's includeObject parameter; kubectl
// relies on the default, Metadata. Any other value is a 400, as the
// apiserver answers.
func includeObjectPolicy(r *http.Request) (metav1.IncludeObjectPolicy, error) {
	switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
	case metav1.IncludeNone, metav1.IncludeObject, metav1.IncludeMetadata:
		return p, nil
	case "":
		return metav1.IncludeMetadata, nil
	default:
		return "", apierrors.NewBadRequest(fmt.Sprintf("includeObject: unsupported value %q: supported values are None, Metadata, Object", p))
	}
}

// writeTable answers objects as a Table.
func (h *apiHandler) writeTable(w http.ResponseWriter, r *http.Request, res *mirror.Resource, objects []*store.Object, listMeta *metav1.ListMeta) {
	raw := make([][]byte, len(objects))
	for i, o := range objects {
		raw[i] = o.JSON
	}
	include, err := includeObjectPolicy(r)
	if err != nil {
		writeError(w, err)
		return
	}
	data, err := h.tableConvertor(r.Context(), res).ConvertObjects(raw, listMeta, include, false, time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	writeRawJSON(w, http.StatusOK, data)
}
