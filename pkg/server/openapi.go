package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// openAPITTL is how long a target's OpenAPI document is reused while the
// mirror's discovery does not change.
const openAPITTL = time.Minute

// openAPICache keeps the targets' OpenAPI documents by path, so
// `kubectl explain` keeps working while a target is down.
type openAPICache struct {
	mu      sync.Mutex
	entries map[string]openAPIEntry
}

type openAPIEntry struct {
	data    []byte
	fetched time.Time
	// discovery is closed when the mirror's discovery changed since.
	discovery <-chan struct{}
}

// openAPI passes the proxied group/versions' OpenAPI through from their
// targets: /openapi/v3 (the index, reduced to the proxied group/versions),
// /openapi/v3/apis/<group>/<version>, and /openapi/v2 reduced to the
// proxied paths and the definitions they reference.
func (h *apiHandler) openAPI(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/openapi/v3":
		index := map[string]map[string]any{"paths": {}}
		for _, gv := range h.mirror.GroupVersions() {
			var targetIndex []byte
			if data, err := h.fetchOpenAPI(r.Context(), gv.Target, "/openapi/v3"); err == nil {
				targetIndex = data
			}
			key, entry := openAPIIndexEntry(targetIndex, gv.Proxy.GroupVersion)
			index["paths"][key] = entry
		}
		writeJSON(w, http.StatusOK, index)
	case strings.HasPrefix(path, "/openapi/v3/apis/"):
		parts := strings.Split(strings.TrimPrefix(path, "/openapi/v3/apis/"), "/")
		if len(parts) != 2 {
			notFound(w, r)
			return
		}
		gv := h.mirror.GroupVersion(parts[0], parts[1])
		if gv == nil {
			notFound(w, r)
			return
		}
		data, err := h.fetchOpenAPI(r.Context(), gv.Target, path)
		switch {
		case apierrors.IsNotFound(err):
			// The target has no document of it (yet), as it says.
			notFound(w, r)
			return
		case err != nil:
			writeError(w, apierrors.NewServiceUnavailable("OpenAPI of "+gv.Proxy.GroupVersion.String()+" unavailable: "+mirror.DescribeFailure(err)))
			return
		}
		writeRawJSON(w, http.StatusOK, data)
	case path == "/openapi/v2":
		h.openAPIV2(w, r)
	default:
		notFound(w, r)
	}
}

// openAPIIndexEntry returns the key and entry of gv in crproxy's OpenAPI v3
// index: the target's own (its serverRelativeURL carries the hash of the
// document), taken from targetIndex, or, where the target's index (nil:
// unknown) does not list gv, an entry without a hash. Every proxied
// group/version is listed: the client's aggregator reads the index only
// when an APIService is created and then once a minute (an APIService's
// update does not make it read OpenAPI v3 again), and routes a document's
// requests only for the paths the index it read listed. Read while the
// target had not published a new CRD's schema yet, an index without the
// group/version would leave `kubectl explain` of its resources failing
// for up to a minute; listed, its requests reach crproxy, which passes the
// target's current document through.
func openAPIIndexEntry(targetIndex []byte, gv schema.GroupVersion) (string, any) {
	key := "apis/" + gv.Group + "/" + gv.Version
	var index struct {
		Paths map[string]any `json:"paths"`
	}
	if json.Unmarshal(targetIndex, &index) == nil {
		if entry, ok := index.Paths[key]; ok {
			return key, entry
		}
	}
	return key, map[string]any{"serverRelativeURL": "/openapi/v3/" + key}
}

func (h *apiHandler) openAPIV2(w http.ResponseWriter, r *http.Request) {
	spec := map[string]any{"swagger": "2.0", "info": map[string]any{"title": "crproxy", "version": "v1"}}
	paths := map[string]any{}
	definitions := map[string]any{}
	for _, gv := range h.mirror.GroupVersions() {
		data, err := h.fetchOpenAPI(r.Context(), gv.Target, "/openapi/v2")
		if err != nil {
			continue
		}
		var target struct {
			Paths       map[string]any `json:"paths"`
			Definitions map[string]any `json:"definitions"`
		}
		if json.Unmarshal(data, &target) != nil {
			continue
		}
		prefix := "/apis/" + gv.Proxy.GroupVersion.Group + "/" + gv.Proxy.GroupVersion.Version + "/"
		for p, item := range target.Paths {
			if strings.HasPrefix(p, prefix) {
				paths[p] = item
				addReferenced(item, target.Definitions, definitions)
			}
		}
	}
	spec["paths"] = paths
	spec["definitions"] = definitions
	writeJSON(w, http.StatusOK, spec)
}

// addReferenced copies into out every definition v references, transitively.
func addReferenced(v any, all, out map[string]any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if ref, ok := x.(string); ok && k == "$ref" && strings.HasPrefix(ref, "#/definitions/") {
				name := strings.TrimPrefix(ref, "#/definitions/")
				if _, done := out[name]; !done {
					if def, ok := all[name]; ok {
						out[name] = def
						addReferenced(def, all, out)
					}
				}
				continue
			}
			addReferenced(x, all, out)
		}
	case []any:
		for _, x := range t {
			addReferenced(x, all, out)
		}
	}
}

// fetchOpenAPI gets path from the target, reusing a copy younger than
// openAPITTL, and an older one when the target cannot answer.
func (h *apiHandler) fetchOpenAPI(ctx context.Context, t *mirror.Target, path string) ([]byte, error) {
	key := t.ID + path
	h.openapi.mu.Lock()
	if h.openapi.entries == nil {
		h.openapi.entries = map[string]openAPIEntry{}
	}
	e, ok := h.openapi.entries[key]
	h.openapi.mu.Unlock()
	if ok && time.Since(e.fetched) < openAPITTL && !isClosed(e.discovery) {
		return e.data, nil
	}
	discovery := h.mirror.DiscoveryChanged()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	data, err := t.GetJSON(ctx, path)
	if err != nil {
		if ok {
			return e.data, nil
		}
		return nil, err
	}
	h.openapi.mu.Lock()
	h.openapi.entries[key] = openAPIEntry{data: data, fetched: time.Now(), discovery: discovery}
	h.openapi.mu.Unlock()
	return data, nil
}

// isClosed reports whether c is closed (a nil channel never is).
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
