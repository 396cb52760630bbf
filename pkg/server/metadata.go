package server

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crproxy/crproxy/pkg/store"
)

// Metadata-only reads (client-go's metadata client, the garbage collector
// and namespace controller of a kube-controller-manager) get each object as
// a PartialObjectMetadata: its kind and apiVersion replaced, its metadata
// kept. crproxy splices the stored metadata bytes into that envelope
// instead of decoding and re-encoding ObjectMeta as the apiserver does: the
// same members and values, only in the stored order.

var errNoMetadata = errors.New("the stored object has no metadata")

// appendPartialObjectMetadata appends object (a custom resource's JSON) as
// a PartialObjectMetadata of apiVersion.
func appendPartialObjectMetadata(buf, object []byte, apiVersion string) ([]byte, error) {
	span, ok := store.ObjectMetadata(object)
	if !ok {
		return buf, errNoMetadata
	}
	buf = append(buf, `{"kind":"PartialObjectMetadata","apiVersion":"`...)
	buf = append(buf, apiVersion...)
	buf = append(buf, `","metadata":`...)
	buf = append(buf, span...)
	return append(buf, '}'), nil
}

// writeMetadataObject answers a get as a PartialObjectMetadata.
func writeMetadataObject(w http.ResponseWriter, obj *store.Object, out output) {
	data, err := appendPartialObjectMetadata(make([]byte, 0, len(obj.JSON)/2+96), obj.JSON, out.metaAPIVersion())
	if err != nil {
		writeError(w, err)
		return
	}
	writeRawJSON(w, http.StatusOK, append(data, '\n'))
}

// writeMetadataList streams a list as a PartialObjectMetadataList, the
// items PartialObjectMetadata of the same version as the apiserver sets
// them. An empty list has "items":null, as the apiserver's (it builds the
// converted list by appending to a nil slice).
func writeMetadataList(w http.ResponseWriter, items []*store.Object, meta metav1.ListMeta, out output) {
	apiVersion := out.metaAPIVersion()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 4<<10)
	buf = append(buf, `{"kind":"PartialObjectMetadataList","apiVersion":"`...)
	buf = append(buf, apiVersion...)
	buf = append(buf, `","metadata":{"resourceVersion":`...)
	buf = strconv.AppendQuote(buf, meta.ResourceVersion)
	if meta.Continue != "" {
		buf = append(buf, `,"continue":`...)
		buf = strconv.AppendQuote(buf, meta.Continue)
	}
	if len(items) == 0 {
		buf = append(buf, `},"items":null}`+"\n"...)
		_, _ = bw.Write(buf)
		_ = bw.Flush()
		return
	}
	buf = append(buf, `},"items":[`...)
	for i, o := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendPartialObjectMetadata(buf, o.JSON, apiVersion); err != nil {
			// Headers are out: end the document short, as an encoding
			// failure of the apiserver does.
			_ = bw.Flush()
			return
		}
		if len(buf) >= 32<<10 {
			_, _ = bw.Write(buf)
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}\n"...)
	_, _ = bw.Write(buf)
	_ = bw.Flush()
}
