package writethrough

import (
	"encoding/json"
	"reflect"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/mirror"
)

func testTranslator() refTranslator {
	return refTranslator{
		passthrough: func(apiVersion, kind string) bool { return apiVersion == "example.com/v1" && kind == "MyResource" },
		gk:          schema.GroupKind{Group: "example.com", Kind: "MyResource"},
		gr:          schema.GroupResource{Group: "example.com", Resource: "myresources"},
		name:        "a",
	}
}

func testRef(apiVersion, kind, name, uid string) map[string]any {
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "name": name, "uid": uid}
}

var (
	refCM     = testRef("v1", "ConfigMap", "cm", "u-cm")
	refOwner  = testRef("example.com/v1", "MyResource", "owner", "u-owner")
	refTarget = testRef("apps/v1", "Deployment", "ctrl", "u-ctrl")
)

// viewWithTargetOnly is a current view object whose target has refTarget.
func viewWithTargetOnly() map[string]any {
	data, _ := json.Marshal([]any{refTarget})
	return map[string]any{"metadata": map[string]any{
		"name": "a", "uid": "u-a", "resourceVersion": "7",
		"ownerReferences": []any{refCM, refOwner},
		"annotations":     map[string]any{mirror.TargetOwnerReferencesAnnotation: string(data), "keep": "me"},
	}}
}

func annotation(meta map[string]any, key string) (any, bool) {
	a, _ := meta["annotations"].(map[string]any)
	v, ok := a[key]
	return v, ok
}

func TestWholeObjectStripsClientOnlyOwners(t *testing.T) {
	meta := map[string]any{
		"name":            "a",
		"ownerReferences": []any{refCM, refOwner},
		"annotations":     map[string]any{mirror.TargetOwnerReferencesAnnotation: "forged", mirror.ClientOwnerReferencesAnnotation: "forged"},
		"finalizers":      []any{"orphan", "x"},
	}
	if err := testTranslator().wholeObject(meta, []any{refTarget}); err != nil {
		t.Fatal(err)
	}
	if got, want := meta["ownerReferences"], []any{refOwner, refTarget}; !reflect.DeepEqual(got, want) {
		t.Errorf("ownerReferences = %v, want %v", got, want)
	}
	s, _ := annotation(meta, mirror.ClientOwnerReferencesAnnotation)
	if refs, _ := mirror.ParseOwnerReferences(s.(string)); !reflect.DeepEqual(refs, []any{refCM, refOwner}) {
		t.Errorf("client annotation = %v", s)
	}
	if _, ok := annotation(meta, mirror.TargetOwnerReferencesAnnotation); ok {
		t.Error("the view annotation reaches the target")
	}
	if got := meta["finalizers"]; !reflect.DeepEqual(got, []any{mirror.OrphanFinalizer, "x"}) {
		t.Errorf("finalizers = %v", got)
	}

	// Back through the view: exactly what was written.
	meta["ownerReferences"] = append(meta["ownerReferences"].([]any), testRef("example.com/v1", "MyResource", "new", "u-new"))
	obj := map[string]any{"metadata": meta}
	mirror.ViewObject(obj, testTranslator().passthrough)
	if got, want := meta["ownerReferences"], []any{refCM, refOwner, testRef("example.com/v1", "MyResource", "new", "u-new")}; !reflect.DeepEqual(got, want) {
		t.Errorf("view = %v, want %v", got, want)
	}
	if got := meta["finalizers"]; !reflect.DeepEqual(got, []any{"orphan", "x"}) {
		t.Errorf("view finalizers = %v", got)
	}
}

func TestWholeObjectOnlyPassthroughIsUnchanged(t *testing.T) {
	meta := map[string]any{"name": "a", "ownerReferences": []any{refOwner}}
	if err := testTranslator().wholeObject(meta, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := meta["annotations"]; ok {
		t.Errorf("annotations added: %v", meta["annotations"])
	}
	if !reflect.DeepEqual(meta["ownerReferences"], []any{refOwner}) {
		t.Errorf("ownerReferences = %v", meta["ownerReferences"])
	}
}

func TestWholeObjectRefusesMalformedClientOnlyOwners(t *testing.T) {
	meta := map[string]any{"name": "a", "ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"}}}
	if err := testTranslator().wholeObject(meta, nil); !apierrors.IsInvalid(err) {
		t.Fatalf("missing uid: %v", err)
	}
	meta = map[string]any{"name": "a", "ownerReferences": []any{"not an object"}}
	if err := testTranslator().wholeObject(meta, nil); !apierrors.IsBadRequest(err) {
		t.Fatalf("not an object: %v", err)
	}
	two := []any{testRef("v1", "ConfigMap", "a", "1"), testRef("v1", "ConfigMap", "b", "2")}
	two[0].(map[string]any)["controller"] = true
	two[1].(map[string]any)["controller"] = true
	meta = map[string]any{"name": "a", "ownerReferences": two}
	if err := testTranslator().wholeObject(meta, nil); !apierrors.IsInvalid(err) {
		t.Fatalf("two controllers: %v", err)
	}
}

func TestMergePatchOwnerReferences(t *testing.T) {
	tr := testTranslator()
	meta := map[string]any{"ownerReferences": []any{refOwner}}
	touched, err := tr.mergePatch(meta, viewWithTargetOnly())
	if err != nil || !touched {
		t.Fatal(touched, err)
	}
	if got, want := meta["ownerReferences"], []any{refOwner, refTarget}; !reflect.DeepEqual(got, want) {
		t.Errorf("ownerReferences = %v, want %v", got, want)
	}
	if v, ok := annotation(meta, mirror.ClientOwnerReferencesAnnotation); !ok || v != nil {
		t.Errorf("the client annotation is not deleted: %v %v", v, ok)
	}

	meta = map[string]any{"ownerReferences": nil}
	if _, err := tr.mergePatch(meta, viewWithTargetOnly()); err != nil {
		t.Fatal(err)
	}
	if got := meta["ownerReferences"]; !reflect.DeepEqual(got, []any{refTarget}) {
		t.Errorf("null: ownerReferences = %v", got)
	}

	// annotations: null deletes the client's annotations, not crproxy's.
	meta = map[string]any{"annotations": nil, "finalizers": []any{"foregroundDeletion"}}
	touched, _ = tr.mergePatch(meta, viewWithTargetOnly())
	if touched {
		t.Error("touched without ownerReferences")
	}
	if got := meta["annotations"]; !reflect.DeepEqual(got, map[string]any{"keep": nil}) {
		t.Errorf("annotations = %v", got)
	}
	if got := meta["finalizers"]; !reflect.DeepEqual(got, []any{mirror.ForegroundFinalizer}) {
		t.Errorf("finalizers = %v", got)
	}
}

func TestApplyConfigurationMergesByUID(t *testing.T) {
	current := map[string]any{"metadata": map[string]any{"ownerReferences": []any{refOwner}}}
	cm2 := testRef("v1", "ConfigMap", "cm2", "u-cm2")
	meta := map[string]any{"ownerReferences": []any{refOwner, cm2}}
	if err := testTranslator().applyConfiguration(meta, current); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(meta["ownerReferences"], []any{refOwner}) {
		t.Errorf("ownerReferences = %v", meta["ownerReferences"])
	}
	s, _ := annotation(meta, mirror.ClientOwnerReferencesAnnotation)
	if refs, _ := mirror.ParseOwnerReferences(s.(string)); !reflect.DeepEqual(refs, []any{refOwner, cm2}) {
		t.Errorf("client annotation = %v", s)
	}
}

func TestJSONPatchTouchesOwnership(t *testing.T) {
	for body, want := range map[string]bool{
		`[{"op":"replace","path":"/spec/name","value":"x"}]`:             false,
		`[{"op":"add","path":"/metadata/labels/x","value":"x"}]`:         false,
		`[{"op":"add","path":"/metadata/ownerReferences/-","value":{}}]`: true,
		`[{"op":"remove","path":"/metadata/annotations"}]`:               true,
		`[{"op":"copy","from":"/metadata/finalizers","path":"/spec/x"}]`: true,
		`[{"op":"replace","path":"/metadata","value":{}}]`:               true,
		`[{"op":"add","path":"/metadata/ownerReferencesX","value":"x"}]`: false,
		`not json`: false,
	} {
		if got := jsonPatchTouchesOwnership([]byte(body)); got != want {
			t.Errorf("%s: %v, want %v", body, got, want)
		}
	}
}

func TestJSONPatchAsMergePatch(t *testing.T) {
	current, _ := json.Marshal(viewWithTargetOnly())
	body := `[{"op":"add","path":"/metadata/ownerReferences/-","value":{"apiVersion":"v1","kind":"Secret","name":"s","uid":"u-s"}},{"op":"replace","path":"/metadata/annotations/keep","value":"changed"}]`
	stamp := func(obj map[string]any) error { return ownerLabels{"o": "x"}.stampObject(obj) }
	out, err := testTranslator().jsonPatchAsMergePatch([]byte(body), current, stamp)
	if err != nil {
		t.Fatal(err)
	}
	var patch map[string]any
	_ = json.Unmarshal(out, &patch)
	meta := patch["metadata"].(map[string]any)
	if meta["resourceVersion"] != "7" {
		t.Errorf("not conditional: %s", out)
	}
	if got := meta["ownerReferences"]; got != nil {
		t.Errorf("the passthrough list did not change, yet ownerReferences = %v", got)
	}
	annotations := meta["annotations"].(map[string]any)
	refs, _ := mirror.ParseOwnerReferences(annotations[mirror.ClientOwnerReferencesAnnotation].(string))
	if len(refs) != 3 || mirror.RefUID(refs[2]) != "u-s" {
		t.Errorf("client annotation = %v", refs)
	}
	if annotations["keep"] != "changed" {
		t.Errorf("annotations = %v", annotations)
	}
	if _, ok := annotations[mirror.TargetOwnerReferencesAnnotation]; ok {
		t.Error("the view annotation is in the patch")
	}
	if meta["labels"].(map[string]any)["o"] != "x" {
		t.Errorf("owner labels not stamped: %s", out)
	}

	// Removing the passthrough owner sends the target-only one back.
	out, err = testTranslator().jsonPatchAsMergePatch([]byte(`[{"op":"remove","path":"/metadata/ownerReferences/1"}]`), current, stamp)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(out, &patch)
	if got := patch["metadata"].(map[string]any)["ownerReferences"]; !reflect.DeepEqual(got, []any{refTarget}) {
		t.Errorf("ownerReferences = %v (%s)", got, out)
	}

	if _, err := testTranslator().jsonPatchAsMergePatch([]byte(`[{"op":"remove","path":"/metadata/finalizers/3"}]`), current, stamp); !isUnprocessable(err) {
		t.Errorf("a failing operation: %v", err)
	}
}

func TestGCFinalizer(t *testing.T) {
	orphan, fg, bg := metav1.DeletePropagationOrphan, metav1.DeletePropagationForeground, metav1.DeletePropagationBackground
	yes := true
	for _, c := range []struct {
		opts metav1.DeleteOptions
		want string
	}{
		{metav1.DeleteOptions{}, ""},
		{metav1.DeleteOptions{PropagationPolicy: &bg}, ""},
		{metav1.DeleteOptions{PropagationPolicy: &orphan}, mirror.OrphanFinalizer},
		{metav1.DeleteOptions{PropagationPolicy: &fg}, mirror.ForegroundFinalizer},
		{metav1.DeleteOptions{OrphanDependents: &yes}, mirror.OrphanFinalizer},
	} {
		if got := gcFinalizer(&c.opts); got != c.want {
			t.Errorf("%+v: %q, want %q", c.opts, got, c.want)
		}
	}
}

func TestFinalizerPatch(t *testing.T) {
	current := map[string]any{"metadata": map[string]any{"uid": "u", "finalizers": []any{"x", "crproxy.dev/orphan"}}}
	got := string(finalizerPatch(current, mirror.ForegroundFinalizer, "5"))
	want := `{"metadata":{"finalizers":["x","orphan","crproxy.dev/foreground-deletion"],"resourceVersion":"5","uid":"u"}}`
	if got != want {
		t.Errorf("patch = %s, want %s", got, want)
	}
	current = map[string]any{"metadata": map[string]any{"uid": "u", "finalizers": []any{"orphan"}}}
	if p := finalizerPatch(current, mirror.OrphanFinalizer, "5"); p != nil {
		t.Errorf("already there: %s", p)
	}
	current = map[string]any{"metadata": map[string]any{"uid": "u", "deletionTimestamp": "2024-01-01T00:00:00Z"}}
	if p := finalizerPatch(current, mirror.OrphanFinalizer, "5"); p != nil {
		t.Errorf("being deleted: %s", p)
	}
}
