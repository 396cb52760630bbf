package writethrough

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/store"
)

var testOwner = ownerLabels{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default"}

var testGR = schema.GroupResource{Group: "example.com", Resource: "myresources"}

func labelsAfter(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var obj struct {
		Metadata struct {
			Labels map[string]any `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Metadata.Labels
}

func TestStampObjectOverridesTheCallersOwnerLabels(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"labels": map[string]any{"vcluster.com/owner-vcluster": "other", "team": "a"}}}
	if err := testOwner.stampObject(obj); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}
	if got := obj["metadata"].(map[string]any)["labels"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	noMeta := map[string]any{}
	if err := testOwner.stampObject(noMeta); err != nil {
		t.Fatal(err)
	}
	if got := noMeta["metadata"].(map[string]any)["labels"]; len(got.(map[string]any)) != 2 {
		t.Fatalf("labels on an object without metadata: %v", got)
	}
	bad := map[string]any{"metadata": map[string]any{"labels": "x"}}
	if err := testOwner.stampObject(bad); !apierrors.IsBadRequest(err) {
		t.Fatalf("labels that are not a map: %v, want 400", err)
	}
}

func TestStampMergePatch(t *testing.T) {
	current := map[string]string{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}
	object := []byte(`{"metadata":{"name":"x","labels":{"vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default","team":"a"}}}`)
	for _, tc := range []struct {
		name, patch string
		want        map[string]any
	}{
		{"deleting an owner label", `{"metadata":{"labels":{"vcluster.com/owner-vcluster":null}}}`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
		{"changing an owner label", `{"metadata":{"labels":{"vcluster.com/owner-project":"other"}}}`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
		{"deleting all labels keeps only the owner labels", `{"metadata":{"labels":null}}`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default"}},
		{"a spec-only patch", `{"spec":{"a":1}}`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
		{"metadata null", `{"metadata":null}`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var patch map[string]any
			if err := json.Unmarshal([]byte(tc.patch), &patch); err != nil {
				t.Fatal(err)
			}
			if err := testOwner.stampMergePatch(patch, current); err != nil {
				t.Fatal(err)
			}
			stamped, _ := json.Marshal(patch)
			merged, err := jsonpatch.MergePatch(object, stamped)
			if err != nil {
				t.Fatal(err)
			}
			if got := labelsAfter(t, merged); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("labels after the patch %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStampJSONPatch(t *testing.T) {
	object := []byte(`{"metadata":{"name":"x","uid":"u1","labels":{"vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default","team":"a"}},"spec":{"a":1}}`)
	for _, tc := range []struct {
		name, patch string
		want        map[string]any
	}{
		{"removing all labels", `[{"op":"remove","path":"/metadata/labels"}]`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default"}},
		{"replacing an owner label", `[{"op":"replace","path":"/metadata/labels/vcluster.com~1owner-vcluster","value":"other"}]`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
		{"replacing all labels", `[{"op":"replace","path":"/metadata/labels","value":{"x":"y"}}]`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "x": "y"}},
		{"a spec-only patch", `[{"op":"replace","path":"/spec/a","value":2}]`,
			map[string]any{"vcluster.com/owner-vcluster": "client", "vcluster.com/owner-project": "default", "team": "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stamped, err := testOwner.stampJSONPatch(testGR, "x", []byte(tc.patch), object, "u1")
			if err != nil {
				t.Fatal(err)
			}
			p, err := jsonpatch.DecodePatch(stamped)
			if err != nil {
				t.Fatal(err)
			}
			patched, err := p.Apply(object)
			if err != nil {
				t.Fatalf("the stamped patch does not apply: %v\n%s", err, stamped)
			}
			if got := labelsAfter(t, patched); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("labels after the patch %v, want %v", got, tc.want)
			}
			// On an object recreated under the same name the UID test fails.
			recreated := []byte(`{"metadata":{"name":"x","uid":"u2","labels":{}}}`)
			if _, err := p.Apply(recreated); err == nil {
				t.Fatal("the stamped patch applied to an object with another UID")
			}
		})
	}
	if _, err := testOwner.stampJSONPatch(testGR, "x", []byte(`{"op":"add"}`), object, ""); !apierrors.IsBadRequest(err) {
		t.Fatalf("a patch that is not a JSON patch: %v, want 400", err)
	}
	if _, err := testOwner.stampJSONPatch(testGR, "x", []byte(`[{"op":"test","path":"/spec/a","value":5}]`), object, ""); !apierrors.IsInvalid(err) {
		t.Fatalf("a failing test operation: %v, want 422", err)
	}
}

// The owner labels of an existing object are its own, whoever writes: an
// all-mode client's update keeps another client's labels, and an object
// created without owner labels gets none, through every write shape.
func TestOwnerLabelsStayTheObjects(t *testing.T) {
	w := New(Options{Client: config.Client{Name: "intruder"}})
	theirs := mustObject(t, `{"metadata":{"name":"x","namespace":"ns","uid":"u","resourceVersion":"3","labels":{"vcluster.com/owner-vcluster":"team-a","vcluster.com/owner-project":"default","app":"a"}}}`)
	unowned := mustObject(t, `{"metadata":{"name":"x","namespace":"ns","uid":"u","resourceVersion":"3","labels":{"app":"a"}}}`)
	claim := map[string]any{"vcluster.com/owner-vcluster": "intruder", "vcluster.com/owner-project": "default"}

	if got := w.labelsFor(nil); !reflect.DeepEqual(got, w.owner) {
		t.Errorf("a create stamps %v, want the writer's %v", got, w.owner)
	}
	for _, c := range []struct {
		what    string
		current *store.Object
		want    map[string]any // the owner labels after the write; nil: none
	}{
		{"another client's object", theirs, map[string]any{"vcluster.com/owner-vcluster": "team-a", "vcluster.com/owner-project": "default"}},
		{"an object without owner labels", unowned, nil},
	} {
		stamp := w.labelsFor(c.current)
		ownerOf := func(labels map[string]any) map[string]any {
			out := map[string]any{}
			for k := range w.owner {
				if v, ok := labels[k]; ok && v != nil {
					out[k] = v
				}
			}
			if len(out) == 0 {
				return nil
			}
			return out
		}

		obj := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "b", "vcluster.com/owner-vcluster": "intruder", "vcluster.com/owner-project": "default"}}}
		if err := stamp.stampObject(obj); err != nil {
			t.Fatal(err)
		}
		if got := ownerOf(obj["metadata"].(map[string]any)["labels"].(map[string]any)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s, update: owner labels %v, want %v", c.what, got, c.want)
		}

		patch := map[string]any{"metadata": map[string]any{"labels": claim}}
		if err := stamp.stampMergePatch(patch, c.current.Labels); err != nil {
			t.Fatal(err)
		}
		merged, _ := jsonpatch.MergePatch(c.current.JSON, mustJSON(patch))
		if got := ownerOf(labelsAfter(t, merged)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s, merge patch: owner labels %v, want %v", c.what, got, c.want)
		}

		ops := `[{"op":"add","path":"/metadata/labels/vcluster.com~1owner-vcluster","value":"intruder"},{"op":"add","path":"/metadata/labels/vcluster.com~1owner-project","value":"default"}]`
		body, err := stamp.stampJSONPatch(testGR, "x", []byte(ops), c.current.JSON, "u")
		if err != nil {
			t.Fatal(err)
		}
		p, err := jsonpatch.DecodePatch(body)
		if err != nil {
			t.Fatal(err)
		}
		patched, err := p.Apply(c.current.JSON)
		if err != nil {
			t.Fatalf("%s: the stamped JSON patch does not apply: %v\n%s", c.what, err, body)
		}
		if got := ownerOf(labelsAfter(t, patched)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s, JSON patch: owner labels %v, want %v", c.what, got, c.want)
		}
	}
}

func mustObject(t *testing.T, doc string) *store.Object {
	t.Helper()
	o, err := store.NewObject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return o
}
