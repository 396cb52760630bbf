package writethrough

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kjson "sigs.k8s.io/json"

	"github.com/crproxy/crproxy/pkg/mirror"
)

// The fuzz targets of the patch and body parsing. Each asserts that bad
// input is a Status error of a client's code (never a panic, a hang, or an
// internal error), and a property of what good input turns into: the
// owner labels are there once the target applies what crproxy sends.
//
//	go test -run='^$' -fuzz='^FuzzStampJSONPatch$' -fuzztime=10s ./pkg/writethrough

// maxFuzzInput keeps each execution quick: the limits themselves are
// tested in limits_test.go.
const maxFuzzInput = 64 << 10

// fuzzObject is the current object of the seeds.
const fuzzObject = `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"default","uid":"u1","resourceVersion":"5","labels":{"team":"a","vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default"},"annotations":{"a":"b"},"ownerReferences":[{"apiVersion":"example.com/v1","kind":"MyResource","name":"o","uid":"u-o"}]},"spec":{"a":1,"list":[1,2,3],"text":"hello"}}`

// jsonPatchSeeds are JSON patches of every operation, bad ones included.
var jsonPatchSeeds = []string{
	`[{"op":"replace","path":"/spec/a","value":2}]`,
	`[{"op":"add","path":"/metadata/labels/x","value":"y"}]`,
	`[{"op":"remove","path":"/metadata/labels"}]`,
	`[{"op":"replace","path":"/metadata/labels","value":null}]`,
	`[{"op":"replace","path":"/metadata/labels","value":{"x":"y","vcluster.com/owner-vcluster":"other"}}]`,
	`[{"op":"move","from":"/metadata/labels","path":"/spec/labels"}]`,
	`[{"op":"copy","from":"/spec","path":"/spec/c1"},{"op":"copy","from":"/spec","path":"/spec/c2"}]`,
	`[{"op":"test","path":"/spec/a","value":1},{"op":"add","path":"/spec/list/-","value":4}]`,
	`[{"op":"add","path":"/spec/big","value":9007199254740993}]`,
	`[{"op":"add","path":"/metadata/Labels","value":{}}]`,
	`[{"op":"add","path":"/metadata/annotations/k","value":"v"}]`,
	`[{"op":"add","path":"/metadata/ownerReferences/-","value":{"apiVersion":"v1","kind":"ConfigMap","name":"c","uid":"u-c"}}]`,
	`[{"op":"add","path":"/metadata/finalizers","value":["orphan"]}]`,
	`[{"op":"replace","path":"/metadata","value":{"name":"x"}}]`,
	`[{"op":"test","path":"/spec/a","value":5}]`,
	`[{"op":"add","path":"/spec/list/-1","value":0}]`,
	`[{"op":"bogus","path":"/spec"}]`,
	`[{"op":"add","path":5}]`,
	`{"op":"add"}`,
	`[]`,
	`null`,
	``,
	`[` + strings.Repeat(`[`, 100) + `]`,
}

// objectSeeds are current objects: ordinary, without labels or metadata,
// with odd labels.
var objectSeeds = []string{
	fuzzObject,
	`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","uid":"u1"},"spec":{"a":1}}`,
	`{"metadata":{"name":"x","labels":null},"spec":{}}`,
	`{"metadata":{"name":"x","labels":["a"]}}`,
	`{"spec":{"a":1}}`,
}

// decodeFuzzObject decodes data as a current object the way the mirror
// holds one (a JSON object, re-encoded compactly); ok is false for input
// that no target would store.
func decodeFuzzObject(data []byte) (map[string]any, []byte, bool) {
	if len(data) > maxFuzzInput {
		return nil, nil, false
	}
	var obj map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &obj); err != nil || obj == nil {
		return nil, nil, false
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, false
	}
	// What it re-encodes to is what is compared below.
	_ = kjson.UnmarshalCaseSensitivePreserveInts(out, &obj)
	return obj, out, true
}

// wantClientError fails unless err is a Status error (an
// apierrors.APIStatus: a *StatusError, or negotiation's 415) that a
// client's input earns: 400, 413, 415 or 422.
func wantClientError(t *testing.T, err error, input ...[]byte) {
	t.Helper()
	var apiStatus apierrors.APIStatus
	if !errors.As(err, &apiStatus) {
		t.Fatalf("error %v (%T) is not a Status, input %q", err, err, input)
	}
	status := apiStatus.Status()
	switch status.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
	default:
		t.Fatalf("Status %d %s %q for input %q", status.Code, status.Reason, status.Message, input)
	}
}

// withOwnerLabels is obj with the owner labels set the way the target ends
// up with them: in metadata.labels, which becomes an object if it is not.
func withOwnerLabels(obj map[string]any) map[string]any {
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return nil
	}
	labels, ok := meta["labels"].(map[string]any)
	if !ok {
		labels = map[string]any{}
		meta["labels"] = labels
	}
	for k, v := range testOwner {
		labels[k] = v
	}
	return obj
}

// hasOwnerLabels reports whether obj's metadata.labels hold the owner
// labels.
func hasOwnerLabels(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	for k, v := range testOwner {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func decodeFuzzJSON(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &m); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return m
}

// FuzzStampJSONPatch: the JSON patch crproxy forwards is the caller's, with
// the UID test first and the owner labels restored after: applied to the
// object it was stamped for, it gives what the caller's patch gives, with
// the owner labels.
func FuzzStampJSONPatch(f *testing.F) {
	for _, p := range jsonPatchSeeds {
		for _, o := range objectSeeds {
			f.Add([]byte(p), []byte(o))
		}
	}
	f.Fuzz(func(t *testing.T, patch, object []byte) {
		_, current, ok := decodeFuzzObject(object)
		if !ok || len(patch) > maxFuzzInput {
			return
		}
		uid := ""
		if meta, ok := decodeFuzzJSON(t, current)["metadata"].(map[string]any); ok {
			uid, _ = meta["uid"].(string)
		}
		stamped, err := testOwner.stampJSONPatch(testGR, "x", patch, current, uid)
		if err != nil {
			wantClientError(t, err, patch, current)
			return
		}
		// What the caller's patch alone makes of current: it applied.
		decoded, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatalf("stamped a patch that does not decode: %v", err)
		}
		callers, err := decoded.Apply(current)
		if err != nil {
			t.Fatalf("stamped a patch that does not apply: %v", err)
		}
		p, err := jsonpatch.DecodePatch(stamped)
		if err != nil {
			t.Fatalf("the stamped patch does not decode: %v\n%s", err, stamped)
		}
		if len(p) > MaxJSONPatchOperations {
			t.Fatalf("the stamped patch has %d operations", len(p))
		}
		var want map[string]any
		if err := kjson.UnmarshalCaseSensitivePreserveInts(callers, &want); err != nil {
			return // the caller's result is no object: the target refuses it
		}
		want = withOwnerLabels(want)
		got, err := p.Apply(current)
		if want == nil {
			return // no metadata object: the target refuses it either way
		}
		if err != nil {
			t.Fatalf("the stamped patch does not apply: %v\npatch %s\nstamped %s\ncurrent %s", err, patch, stamped, current)
		}
		if g := decodeFuzzJSON(t, got); !reflect.DeepEqual(g, want) {
			t.Fatalf("the stamped patch gives\n%s\nthe caller's patch and the owner labels\n%s\npatch %s\nstamped %s", got, mustJSON(want), patch, stamped)
		}
	})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// FuzzJSONPatchAsMergePatch: a JSON patch applied locally becomes a merge
// patch that, applied to the object's target form, gives the owner labels
// and never carries crproxy's view annotation.
func FuzzJSONPatchAsMergePatch(f *testing.F) {
	for _, p := range jsonPatchSeeds {
		for _, o := range objectSeeds {
			f.Add([]byte(p), []byte(o))
		}
	}
	tr := testTranslator()
	f.Fuzz(func(t *testing.T, patch, object []byte) {
		before, current, ok := decodeFuzzObject(object)
		if !ok || len(patch) > maxFuzzInput {
			return
		}
		mp, err := tr.jsonPatchAsMergePatch(patch, current, testOwner.stampObject)
		if err != nil {
			var status *apierrors.StatusError
			if errors.As(err, &status) && status.ErrStatus.Code == http.StatusInternalServerError {
				// Only an object whose own metadata crproxy cannot
				// translate (no target stores one) may answer 500.
				meta, _ := before["metadata"].(map[string]any)
				if meta == nil || tr.wholeObject(meta, targetOnlyOf(before)) != nil {
					return
				}
			}
			wantClientError(t, err, patch, current)
			return
		}
		patchDoc := decodeFuzzJSON(t, mp)
		meta, _ := patchDoc["metadata"].(map[string]any)
		if meta == nil || meta["resourceVersion"] == nil && hasResourceVersion(before) {
			t.Fatalf("the merge patch is not conditional on the resourceVersion: %s", mp)
		}
		// The target form of current, as the target holds it.
		target := decodeFuzzJSON(t, current)
		targetMeta, _ := target["metadata"].(map[string]any)
		if targetMeta == nil {
			targetMeta = map[string]any{}
			target["metadata"] = targetMeta
		}
		if err := tr.wholeObject(targetMeta, targetOnlyOf(before)); err != nil {
			return
		}
		merged, err := jsonpatch.MergePatch(mustJSON(target), mp)
		if err != nil {
			t.Fatalf("the merge patch does not apply: %v\n%s", err, mp)
		}
		result := decodeFuzzJSON(t, merged)
		if !hasOwnerLabels(result) {
			t.Fatalf("no owner labels after the merge patch\npatch %s\nmerge patch %s\nresult %s", patch, mp, merged)
		}
		if _, forged := annotation(result["metadata"].(map[string]any), mirror.TargetOwnerReferencesAnnotation); forged {
			t.Fatalf("the view annotation reaches the target: %s", merged)
		}
	})
}

func hasResourceVersion(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	return meta["resourceVersion"] != nil
}

// mergePatchSeeds are merge patches, bad ones included.
var mergePatchSeeds = []string{
	`{"spec":{"a":2}}`,
	`{"metadata":{"labels":{"x":"y","vcluster.com/owner-vcluster":null}}}`,
	`{"metadata":{"labels":null}}`,
	`{"metadata":null}`,
	`{"metadata":{"labels":"x"}}`,
	`{"metadata":{"annotations":null,"ownerReferences":null,"finalizers":["orphan"]}}`,
	`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"c","uid":"u-c"}]}}`,
	`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]}}`,
	`{"metadata":{"annotations":{"` + mirror.TargetOwnerReferencesAnnotation + `":"forged"}}}`,
	`{"spec":{"a":1,"a":2}}`,
	`[1]`,
	`null`,
	`{`,
	``,
}

// FuzzStampMergePatch: a merge patch as crproxy forwards it, applied to
// the target's object, leaves the owner labels there.
func FuzzStampMergePatch(f *testing.F) {
	for _, p := range mergePatchSeeds {
		for _, o := range objectSeeds {
			f.Add([]byte(p), []byte(o))
		}
	}
	tr := testTranslator()
	f.Fuzz(func(t *testing.T, body, object []byte) {
		current, currentJSON, ok := decodeFuzzObject(object)
		if !ok || len(body) > maxFuzzInput {
			return
		}
		meta, _ := current["metadata"].(map[string]any)
		labels := map[string]string{}
		if l, ok := meta["labels"].(map[string]any); ok {
			for k, v := range l {
				if s, ok := v.(string); ok {
					labels[k] = s
				}
			}
		}
		doc, err := decodeDocument(context.Background(), body, false, "")
		if err != nil {
			wantClientError(t, err, body)
			return
		}
		patch, ok := doc.(map[string]any)
		if !ok {
			return // the writer's 400
		}
		if err := testOwner.stampMergePatch(patch, labels); err != nil {
			wantClientError(t, err, body)
			return
		}
		patchMeta, err := metadataOf(patch)
		if err != nil {
			t.Fatalf("stampMergePatch left metadata that is not an object: %v", err)
		}
		if _, err := tr.mergePatch(patchMeta, current); err != nil {
			wantClientError(t, err, body)
			return
		}
		out, err := json.Marshal(patch)
		if err != nil {
			t.Fatalf("the stamped merge patch does not encode: %v", err)
		}
		merged, err := jsonpatch.MergePatch(currentJSON, out)
		if err != nil {
			t.Fatalf("the stamped merge patch does not apply: %v\n%s", err, out)
		}
		result := decodeFuzzJSON(t, merged)
		if !hasOwnerLabels(result) {
			t.Fatalf("no owner labels after the merge patch\npatch %s\nstamped %s\nresult %s", body, out, merged)
		}
		if l, _ := result["metadata"].(map[string]any)["labels"].(map[string]any); len(l) > len(testOwner)+len(labels)+len(patchLabels(patch)) {
			t.Fatalf("labels %v appeared from nowhere", l)
		}
	})
}

func patchLabels(patch map[string]any) map[string]any {
	meta, _ := patch["metadata"].(map[string]any)
	l, _ := meta["labels"].(map[string]any)
	return l
}

// applySeeds are apply configurations in YAML and JSON, bad ones included.
var applySeeds = []string{
	"apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: x\n  labels:\n    team: a\nspec:\n  a: 1\n",
	"apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: x\n  labels: null\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: c\n    uid: u-c\n",
	"metadata:\n  labels:\n    vcluster.com/owner-vcluster: other\n",
	"metadata: 5\n",
	"metadata:\n  labels: [a]\n",
	`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","finalizers":["foregroundDeletion"]}}`,
	"a: &a [1]\nb: *a\n",
	"- a\n",
	"a: b: c\n",
	"metadata:\n  name: x\n  name: y\n",
	"",
}

// FuzzApplyConfiguration: an apply configuration as crproxy forwards it
// names the owner labels, and never crproxy's view annotation.
func FuzzApplyConfiguration(f *testing.F) {
	for _, s := range applySeeds {
		f.Add([]byte(s))
	}
	tr := testTranslator()
	var current map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(fuzzObject), &current); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			return
		}
		doc, err := decodeDocument(context.Background(), body, true, "")
		if err != nil {
			wantClientError(t, err, body)
			return
		}
		patch, ok := doc.(map[string]any)
		if !ok {
			return // the writer's 400
		}
		if err := testOwner.stampObject(patch); err != nil {
			wantClientError(t, err, body)
			return
		}
		meta, err := metadataOf(patch)
		if err != nil {
			t.Fatalf("stampObject left metadata that is not an object: %v", err)
		}
		if err := tr.applyConfiguration(meta, current); err != nil {
			wantClientError(t, err, body)
			return
		}
		out, err := json.Marshal(patch)
		if err != nil {
			t.Fatalf("the apply configuration does not encode: %v", err)
		}
		result := decodeFuzzJSON(t, out)
		if !hasOwnerLabels(result) {
			t.Fatalf("no owner labels in the apply configuration %s", out)
		}
		if _, forged := annotation(result["metadata"].(map[string]any), mirror.TargetOwnerReferencesAnnotation); forged {
			t.Fatalf("the view annotation reaches the target: %s", out)
		}
	})
}

// FuzzDecodeObject: the body of a create or update is a 400 or 415, or an
// object of the resource's group/version and kind in the URL's namespace
// (and with the URL's name).
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x"},"spec":{"a":1}}`,
		`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"other"}}`,
		`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":null}`,
		`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":"x"}`,
		`{"apiVersion":"other/v1","kind":"MyResource"}`,
		`{"apiVersion":"example.com/v1/x","kind":"MyResource"}`,
		`{"apiVersion":"example.com/v1","kind":"Other"}`,
		`{"apiVersion":"example.com/v1","kind":"MyResource","spec":{"a":1,"a":2}}`,
		"apiVersion: example.com/v1\nkind: MyResource\nmetadata:\n  name: x\n",
		`["a"]`,
		`{"apiVersion":`,
		``,
	} {
		for _, contentType := range []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", ""} {
			f.Add([]byte(s), contentType, "x", "Strict")
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType, name, fieldValidation string) {
		if len(body) > maxFuzzInput {
			return
		}
		req := &Request{
			Resource: testResource(), Namespace: "default", Name: name, ContentType: contentType,
			Body: body, Query: map[string][]string{"fieldValidation": {fieldValidation}},
		}
		obj, err := decodeObject(context.Background(), req)
		if err != nil {
			wantClientError(t, err, body)
			return
		}
		meta, _ := obj["metadata"].(map[string]any)
		if obj["apiVersion"] != "example.com/v1" || obj["kind"] != "MyResource" || meta == nil || meta["namespace"] != "default" {
			t.Fatalf("decoded %v", obj)
		}
		if name != "" && meta["name"] != name {
			t.Fatalf("decoded the name %v on the URL of %q", meta["name"], name)
		}
		if _, err := json.Marshal(obj); err != nil {
			t.Fatalf("the object does not encode: %v", err)
		}
	})
}

// FuzzDeleteOptions: a delete's body is DeleteOptions or a 400.
func FuzzDeleteOptions(f *testing.F) {
	for _, s := range []string{
		`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground","dryRun":["All"]}`,
		`{"preconditions":{"uid":"u1","resourceVersion":"5"},"orphanDependents":true}`,
		"propagationPolicy: Orphan\ngracePeriodSeconds: 0\n",
		`{"propagationPolicy":`,
		`{"gracePeriodSeconds":"x"}`,
		`[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzInput {
			return
		}
		opts, err := deleteOptions(&Request{Body: body})
		if err != nil {
			wantClientError(t, err, body)
			return
		}
		_ = gcFinalizer(opts)
		if _, err := json.Marshal(opts); err != nil {
			t.Fatalf("the options do not encode: %v", err)
		}
	})
}

// FuzzWritePatch drives a whole patch through the Writer to a target that
// records writes: bad input answers a client's Status and writes nothing;
// good input sends JSON that leaves the owner labels on the object.
func FuzzWritePatch(f *testing.F) {
	patchTypes := []string{"application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml", "application/strategic-merge-patch+json", "text/plain"}
	for i := range patchTypes {
		for _, p := range append(append(append([]string{}, jsonPatchSeeds...), mergePatchSeeds...), applySeeds...) {
			f.Add(uint8(i), []byte(p))
		}
	}
	w, res, fake := newFakeTargetWriter(f, fuzzObject)
	path := "/apis/example.com/v1/namespaces/default/myresources/x"
	f.Fuzz(func(t *testing.T, patchType uint8, body []byte) {
		if len(body) > maxFuzzInput {
			return
		}
		fake.Forget()
		contentType := patchTypes[int(patchType)%len(patchTypes)]
		resp, err := w.Write(context.Background(), &Request{
			Resource: res, Verb: "patch", Namespace: "default", Name: "x", Path: path,
			Query: map[string][]string{}, ContentType: contentType, Body: body,
		})
		writes := fake.Writes()
		if err != nil {
			wantClientError(t, err, body)
			if len(writes) > 0 {
				t.Fatalf("refused with %v, yet the target received %q", err, described(fake.Writes()))
			}
			return
		}
		if resp.Code != http.StatusOK || len(writes) == 0 {
			t.Fatalf("answer %d, writes %q", resp.Code, described(fake.Writes()))
		}
		for _, wr := range writes {
			if wr.Method != http.MethodPatch || wr.Path != path {
				t.Fatalf("the target received %q", described(fake.Writes()))
			}
			var result []byte
			switch wr.ContentType {
			case "application/json-patch+json":
				p, err := jsonpatch.DecodePatch(wr.Body)
				if err != nil {
					t.Fatalf("the target received a JSON patch that does not decode: %v\n%s", err, wr.Body)
				}
				if result, err = p.Apply([]byte(fuzzObject)); err != nil {
					continue // the target's 422, as it would answer the caller's patch
				}
			case "application/merge-patch+json":
				if result, err = jsonpatch.MergePatch([]byte(fuzzObject), wr.Body); err != nil {
					t.Fatalf("the target received a merge patch that does not apply: %v\n%s", err, wr.Body)
				}
			case "application/apply-patch+yaml":
				result = wr.Body
			default:
				t.Fatalf("the target received a %q", wr.ContentType)
			}
			var obj map[string]any
			if kjson.UnmarshalCaseSensitivePreserveInts(result, &obj) != nil {
				continue // the target's 400 or 422
			}
			if _, isMap := obj["metadata"].(map[string]any); isMap && !hasOwnerLabels(obj) {
				t.Fatalf("no owner labels once the target applies %s\n%s\ncaller's patch %s", wr.ContentType, wr.Body, body)
			}
		}
		if n := len(writes); n > 1+maxConflictRetries {
			t.Fatalf("%d writes for one patch", n)
		}
	})
}
