package mirror

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func testPassthrough(apiVersion, kind string) bool {
	return apiVersion == "example.com/v1" && kind == "MyResource"
}

func ref(apiVersion, kind, name, uid string) map[string]any {
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "name": name, "uid": uid}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestViewObjectLeavesPlainObjectsAlone(t *testing.T) {
	in := `{"metadata":{"name":"a","labels":{"x":"y"},"annotations":{"k":"v"},"finalizers":["example.com/f"]},"spec":{}}`
	obj := decode(t, in)
	if ViewObject(obj, testPassthrough) {
		t.Fatal("changed an object without ownerReferences, crproxy annotations or GC finalizers")
	}
	if got := ViewJSON([]byte(in), testPassthrough); string(got) != in {
		t.Fatalf("ViewJSON changed the bytes: %s", got)
	}
}

func TestViewObjectReconstructsTheClientsList(t *testing.T) {
	cm := ref("v1", "ConfigMap", "cm", "u-cm")
	owner := ref("example.com/v1", "MyResource", "owner", "u-owner")
	gone := ref("example.com/v1", "MyResource", "gone", "u-gone")
	added := ref("example.com/v1", "MyResource", "added", "u-added")
	targetOnly := ref("apps/v1", "Deployment", "ctrl", "u-ctrl")
	written, _ := json.Marshal([]any{cm, owner, gone})
	obj := map[string]any{"metadata": map[string]any{
		"name":            "a",
		"ownerReferences": []any{targetOnly, added, owner},
		"annotations":     map[string]any{ClientOwnerReferencesAnnotation: string(written)},
		"finalizers":      []any{OrphanFinalizer, "orphan", "x"},
	}}
	if !ViewObject(obj, testPassthrough) {
		t.Fatal("not changed")
	}
	meta := obj["metadata"].(map[string]any)
	want := []any{cm, owner, added}
	if !reflect.DeepEqual(meta["ownerReferences"], want) {
		t.Errorf("ownerReferences = %v, want %v", meta["ownerReferences"], want)
	}
	annotations := meta["annotations"].(map[string]any)
	if _, ok := annotations[ClientOwnerReferencesAnnotation]; ok {
		t.Error("the client annotation is visible")
	}
	var hidden []any
	_ = json.Unmarshal([]byte(annotations[TargetOwnerReferencesAnnotation].(string)), &hidden)
	if !reflect.DeepEqual(hidden, []any{targetOnly}) {
		t.Errorf("target-only references = %v", hidden)
	}
	if got := meta["finalizers"]; !reflect.DeepEqual(got, []any{"orphan", OrphanFinalizer, "x"}) {
		t.Errorf("finalizers = %v", got)
	}
}

func TestViewObjectHidesTargetOnlyOwners(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{
		"name":            "a",
		"ownerReferences": []any{ref("apps/v1", "Deployment", "ctrl", "u-ctrl")},
		// A forged view annotation at the target is replaced.
		"annotations": map[string]any{TargetOwnerReferencesAnnotation: "[]"},
	}}
	ViewObject(obj, testPassthrough)
	meta := obj["metadata"].(map[string]any)
	if _, ok := meta["ownerReferences"]; ok {
		t.Errorf("a target-only owner is visible: %v", meta["ownerReferences"])
	}
	s := meta["annotations"].(map[string]any)[TargetOwnerReferencesAnnotation].(string)
	if refs, _ := ParseOwnerReferences(s); len(refs) != 1 || RefUID(refs[0]) != "u-ctrl" {
		t.Errorf("carried %s", s)
	}

	// Only the client annotation and no client-only owner left: no
	// annotations at all, as the client wrote none.
	written, _ := json.Marshal([]any{ref("v1", "ConfigMap", "cm", "u-cm")})
	obj = map[string]any{"metadata": map[string]any{"name": "a", "annotations": map[string]any{ClientOwnerReferencesAnnotation: string(written)}}}
	ViewObject(obj, testPassthrough)
	meta = obj["metadata"].(map[string]any)
	if _, ok := meta["annotations"]; ok {
		t.Errorf("annotations = %v", meta["annotations"])
	}
	if refs := meta["ownerReferences"].([]any); len(refs) != 1 || RefUID(refs[0]) != "u-cm" {
		t.Errorf("ownerReferences = %v", refs)
	}
}

func TestSwapFinalizerIsAnInvolution(t *testing.T) {
	for _, f := range []string{"orphan", "foregroundDeletion", OrphanFinalizer, ForegroundFinalizer, "other"} {
		if SwapFinalizer(SwapFinalizer(f)) != f {
			t.Errorf("%s does not come back", f)
		}
	}
}

func TestTargetPassthrough(t *testing.T) {
	tg := &Target{}
	tg.AddPassthroughKind(schema.GroupKind{Group: "example.com", Kind: "MyResource"})
	if !tg.Passthrough("example.com/v2", "MyResource") || tg.Passthrough("v1", "ConfigMap") || tg.Passthrough("other.com/v1", "MyResource") {
		t.Fatal("wrong passthrough set")
	}
}

func TestViewJSONOfAList(t *testing.T) {
	in := `{"kind":"MyResourceList","items":[{"metadata":{"name":"a","finalizers":["crproxy.dev/orphan"]}},{"metadata":{"name":"b"}}]}`
	got := decode(t, string(ViewJSON([]byte(in), testPassthrough)))
	f := got["items"].([]any)[0].(map[string]any)["metadata"].(map[string]any)["finalizers"]
	if !reflect.DeepEqual(f, []any{"orphan"}) {
		t.Fatalf("finalizers = %v", f)
	}
}
