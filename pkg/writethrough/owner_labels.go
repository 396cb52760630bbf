package writethrough

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
)

// ownerLabels are the owner labels a write must leave on an object: the
// writer's on a create, the object's own on every other write (see
// Writer.labelsFor). An empty value means the label must be absent: an
// object created without owner labels keeps none.
type ownerLabels map[string]string

// owns reports whether labels carry exactly these owner labels.
func (o ownerLabels) owns(labels map[string]string) bool {
	for k, v := range o {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// keys are the owner label keys, sorted (for stable patches).
func (o ownerLabels) keys() []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// stampObject sets the owner labels on a whole object (create, update,
// apply configuration), whatever the caller put there.
func (o ownerLabels) stampObject(obj map[string]any) error {
	meta, err := metadataOf(obj)
	if err != nil {
		return err
	}
	return o.setIn(meta)
}

// setIn sets the owner labels in metadata meta, creating its labels when
// absent or null.
func (o ownerLabels) setIn(meta map[string]any) error {
	labels, err := labelsOf(meta)
	if err != nil {
		return err
	}
	for k, v := range o {
		if v == "" {
			delete(labels, k)
		} else {
			labels[k] = v
		}
	}
	return nil
}

// labelsOf returns meta's labels, creating them when absent or null.
func labelsOf(meta map[string]any) (map[string]any, error) {
	switch l := meta["labels"].(type) {
	case map[string]any:
		return l, nil
	case nil:
		created := map[string]any{}
		meta["labels"] = created
		return created, nil
	default:
		return nil, apierrors.NewBadRequest("metadata.labels must be a map of strings")
	}
}

// stampMergePatch makes a JSON merge patch leave the owner labels as they
// must be. A patch that deletes all labels (labels: null) keeps its
// meaning for the other labels: each label of current (the object as last
// seen, may be nil) other than the owner labels is deleted one by one.
func (o ownerLabels) stampMergePatch(patch map[string]any, current map[string]string) error {
	meta, ok := patch["metadata"].(map[string]any)
	if !ok {
		// Absent, or null (which no object survives): either way the
		// labels are set explicitly.
		meta = map[string]any{}
		patch["metadata"] = meta
	}
	if raw, present := meta["labels"]; present && raw == nil {
		cleared := map[string]any{}
		for k := range current {
			cleared[k] = nil
		}
		meta["labels"] = cleared
	}
	labels, err := labelsOf(meta)
	if err != nil {
		return err
	}
	for k, v := range o {
		if v == "" {
			labels[k] = nil // a merge patch deletes with null
		} else {
			labels[k] = v
		}
	}
	return nil
}

// jsonPatchOperation is one operation of an RFC 6902 JSON patch.
type jsonPatchOperation map[string]any

// stampJSONPatch returns a JSON patch that applies the caller's operations
// and then restores the owner labels. current is the object the patch will
// be applied to (as last seen): applying the caller's operations to it
// tells whether metadata.labels still exists afterwards, which decides the
// operations to append. uid, when set, is tested first, so the patch
// cannot land on another object of the same name. A patch that is not a
// JSON patch answers 400, one of more than MaxJSONPatchOperations 413, one
// that cannot apply to current (copies past MaxJSONPatchCopyBytes
// included) 422, as the kube-apiserver answers.
func (o ownerLabels) stampJSONPatch(gr schema.GroupResource, name string, body, current []byte, uid string) ([]byte, error) {
	decoded, err := decodeJSONPatch(body)
	if err != nil {
		return nil, err
	}
	// The caller's operations go as they came: decoded, a number past
	// 2^53 would change.
	var ops []json.RawMessage
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	patched, err := applyJSONPatch(decoded, current)
	if err != nil {
		return nil, err
	}
	// Whether metadata.labels is an object afterwards, keys matched
	// exactly as the target matches them (encoding/json would take
	// "Labels" for labels).
	var after map[string]any
	_ = kjson.UnmarshalCaseSensitivePreserveInts(patched, &after)
	afterMeta, _ := after["metadata"].(map[string]any)
	_, hasLabels := afterMeta["labels"].(map[string]any)

	out := make([]any, 0, len(ops)+len(o)+1)
	if uid != "" {
		out = append(out, jsonPatchOperation{"op": "test", "path": "/metadata/uid", "value": uid})
	}
	for _, op := range ops {
		out = append(out, op)
	}
	if hasLabels {
		afterLabels, _ := afterMeta["labels"].(map[string]any)
		for _, k := range o.keys() {
			path := "/metadata/labels/" + escapeJSONPointer(k)
			if o[k] != "" {
				out = append(out, jsonPatchOperation{"op": "add", "path": path, "value": o[k]})
			} else if _, has := afterLabels[k]; has {
				out = append(out, jsonPatchOperation{"op": "remove", "path": path})
			}
		}
	} else {
		labels := map[string]string{}
		for k, v := range o {
			if v != "" {
				labels[k] = v
			}
		}
		if len(labels) > 0 {
			out = append(out, jsonPatchOperation{"op": "add", "path": "/metadata/labels", "value": labels})
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("encoding the JSON patch: %w", err))
	}
	return data, nil
}

// escapeJSONPointer escapes a key as one JSON pointer token (RFC 6901).
func escapeJSONPointer(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
