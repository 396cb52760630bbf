package writethrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

// quickly is how long refusing bad input may take: it is bounded, whatever
// the input (loose, for a busy machine, and looser with the race detector).
func quickly() time.Duration {
	if raceEnabled {
		return 60 * time.Second
	}
	return 5 * time.Second
}

// wantStatus fails unless err is a *StatusError of code and reason whose
// message starts with prefix.
func wantStatus(t testing.TB, err error, code int32, reason metav1.StatusReason, prefix string) {
	t.Helper()
	var status *apierrors.StatusError
	if !errors.As(err, &status) {
		t.Fatalf("error %v (%T), want a Status %d %s", err, err, code, reason)
	}
	s := status.ErrStatus
	if s.Code != code || s.Reason != reason || !strings.HasPrefix(s.Message, prefix) {
		t.Fatalf("Status %d %s %q, want %d %s %q...", s.Code, s.Reason, s.Message, code, reason, prefix)
	}
}

// nested is v inside depth levels of open+close (e.g. `{"a":` and `}`).
func nested(open, close, v string, depth int) []byte {
	return []byte(strings.Repeat(open, depth) + v + strings.Repeat(close, depth))
}

// copyBomb is the patch of the issue: n copies of /spec into /spec itself,
// each doubling it.
func copyBomb(n int) []byte {
	ops := make([]string, n)
	for i := range ops {
		ops[i] = fmt.Sprintf(`{"op":"copy","from":"/spec","path":"/spec/c%d"}`, i)
	}
	return []byte("[" + strings.Join(ops, ",") + "]")
}

// jsonPatchOf is a JSON patch of n operations that each replace
// /spec/a.
func jsonPatchOf(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"op":"replace","path":"/spec/a","value":%d}`, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func TestJSONPatchCopyLimitIsTheKubeAPIServers(t *testing.T) {
	if got := jsonpatch.AccumulatedCopySizeLimit; got != 3*1024*1024 || MaxJSONPatchCopyBytes != MaxBodyBytes {
		t.Fatalf("jsonpatch.AccumulatedCopySizeLimit = %d, MaxJSONPatchCopyBytes = %d, want 3 MiB", got, MaxJSONPatchCopyBytes)
	}
}

func TestReadBodyLimit(t *testing.T) {
	read := func(method, contentType string, body []byte) ([]byte, error) {
		r := httptest.NewRequest(method, "/apis/example.com/v1/namespaces/default/myresources", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		return ReadBody(r)
	}
	full := bytes.Repeat([]byte("x"), MaxBodyBytes)
	if data, err := read(http.MethodPost, "application/json", full); err != nil || len(data) != MaxBodyBytes {
		t.Fatalf("a body of exactly MaxBodyBytes: %d bytes, %v", len(data), err)
	}
	_, err := read(http.MethodPost, "application/json", append(full, 'x'))
	wantStatus(t, err, 413, metav1.StatusReasonRequestEntityTooLarge, "Request entity too large: limit is 3145728")

	// An apply configuration is decoded once when read: YAML nested past
	// the decoder's limit is refused before anything is done with it.
	deep := nested("[", "]", "1", 10001)
	_, err = read(http.MethodPatch, "application/apply-patch+yaml; charset=utf-8", deep)
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "error decoding YAML: ")
	if !strings.Contains(err.Error(), "exceeded max depth of 10000") {
		t.Fatalf("message %q, want the YAML decoder's depth error", err)
	}
	if _, err := read(http.MethodPatch, "application/apply-patch+yaml", []byte("metadata:\n  name: a\n")); err != nil {
		t.Fatalf("a good apply configuration: %v", err)
	}
	// Other bodies are decoded where they are used.
	if _, err := read(http.MethodPatch, "application/merge-patch+json", deep); err != nil {
		t.Fatalf("a merge patch is not decoded when read: %v", err)
	}
}

func TestJSONPatchOperationLimit(t *testing.T) {
	if p, err := decodeJSONPatch(jsonPatchOf(MaxJSONPatchOperations)); err != nil || len(p) != MaxJSONPatchOperations {
		t.Fatalf("%d operations: %d, %v", MaxJSONPatchOperations, len(p), err)
	}
	const want = "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
	_, err := decodeJSONPatch(jsonPatchOf(MaxJSONPatchOperations + 1))
	wantStatus(t, err, 413, metav1.StatusReasonRequestEntityTooLarge, want)
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	current := []byte(`{"metadata":{"name":"x","uid":"u1"},"spec":{"a":0}}`)
	_, err = testOwner.stampJSONPatch(testGR, "x", jsonPatchOf(MaxJSONPatchOperations+1), current, "u1")
	wantStatus(t, err, 413, metav1.StatusReasonRequestEntityTooLarge, want)
	_, err = testTranslator().jsonPatchAsMergePatch(jsonPatchOf(MaxJSONPatchOperations+1), current, func(map[string]any) error { return nil })
	wantStatus(t, err, 413, metav1.StatusReasonRequestEntityTooLarge, want)

	// A patch that has no room for crproxy's operations under the
	// target's limit goes the local way, which sends a merge patch.
	if jsonPatchTouchesOwnership(jsonPatchOf(MaxJSONPatchOperations - jsonPatchStampOperations)) {
		t.Error("a patch with room for crproxy's operations is applied locally")
	}
	if !jsonPatchTouchesOwnership(jsonPatchOf(MaxJSONPatchOperations - jsonPatchStampOperations + 1)) {
		t.Error("a patch without room for crproxy's operations is forwarded")
	}
	if got := 1 + len(testOwner); jsonPatchStampOperations < got {
		t.Fatalf("jsonPatchStampOperations %d, stampJSONPatch adds up to %d", jsonPatchStampOperations, got)
	}
}

// TestJSONPatchCopyBomb: the patch of the issue is refused quickly, with
// bounded memory, with the kube-apiserver's 422.
func TestJSONPatchCopyBomb(t *testing.T) {
	current := []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","uid":"u1","annotations":{"a":"b"}},"spec":{"text":"` + strings.Repeat("x", 1000) + `"}}`)
	bomb := copyBomb(30)
	// The local path too: one more operation touches the annotations.
	localBomb := append(bytes.Clone(bytes.TrimSuffix(bomb, []byte("]"))), []byte(`,{"op":"add","path":"/metadata/annotations/c","value":"d"}]`)...)
	for name, apply := range map[string]func() error{
		"forwarded": func() error {
			_, err := testOwner.stampJSONPatch(testGR, "x", bomb, current, "u1")
			return err
		},
		"applied locally": func() error {
			_, err := testTranslator().jsonPatchAsMergePatch(localBomb, current, testOwner.stampObject)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := apply()
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			wantStatus(t, err, 422, metav1.StatusReasonInvalid, "the server rejected our request due to an error in our request")
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100<<20 {
				t.Errorf("refusing the copy bomb allocated %d MiB", alloc>>20)
			}
			if took > quickly() {
				t.Errorf("refusing the copy bomb took %v", took)
			}
		})
	}
	// Copies within the limit still apply.
	if _, err := testOwner.stampJSONPatch(testGR, "x", copyBomb(5), current, "u1"); err != nil {
		t.Fatalf("a patch copying 31 KB: %v", err)
	}
}

func TestNestingLimit(t *testing.T) {
	ctx := context.Background()
	deepObject := func(depth int) []byte {
		return []byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x"},"spec":` + string(nested(`{"a":`, "}", "1", depth-1)) + `}`)
	}
	req := &Request{Resource: testResource(), Namespace: "default", ContentType: "application/json"}

	req.Body = deepObject(10000)
	if _, err := decodeObject(ctx, req); err != nil {
		t.Fatalf("an object nested 10000 levels: %v", err)
	}
	req.Body = deepObject(10001)
	_, err := decodeObject(ctx, req)
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest,
		`the object provided is unrecognized (must be of type MyResource): couldn't get version/kind; json parse error: invalid character '{' exceeded max depth ({"apiVersion":"example.com/v1" ...)`)

	req.ContentType = "application/yaml"
	req.Body = nested("[", "]", "1", 10001)
	_, err = decodeObject(ctx, req)
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "the object provided is unrecognized (must be of type MyResource): yaml: ")
	if !strings.Contains(err.Error(), "exceeded max depth of 10000") || !strings.HasSuffix(err.Error(), "(5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b ...)") {
		t.Fatalf("message %q", err)
	}

	_, err = decodeDocument(ctx, nested(`{"a":`, "}", "1", 10001), false, "")
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "error decoding patch: invalid character '{' exceeded max depth")
	_, err = decodeDocument(ctx, nested(`{"a":`, "}", "1", 10001), true, "")
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "error decoding YAML: ")

	_, err = decodeJSONPatch([]byte(`[{"op":"add","path":"/spec/a","value":` + string(nested("[", "]", "1", 10000)) + `}]`))
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "error decoding patch: invalid character '[' exceeded max depth")
}

// TestYAMLAliasBomb: "billion laughs" in an apply configuration is refused
// by the YAML decoder's alias limit, quickly.
func TestYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		fmt.Fprintf(&b, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c, c, c-1, c-1, c-1, c-1, c-1, c-1, c-1, c-1, c-1)
	}
	start := time.Now()
	_, err := decodeDocument(context.Background(), []byte(b.String()), true, "")
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "error decoding YAML: ")
	if !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("message %q, want the alias limit's", err)
	}
	if took := time.Since(start); took > quickly() {
		t.Errorf("refusing the alias bomb took %v", took)
	}
}

// described describes requests a fake target received, for failures.
func described(reqs []faketarget.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, fmt.Sprintf("%s %s %s %.200s", r.Method, r.Path, r.ContentType, r.Body))
	}
	return out
}

// testResource is the namespaced example.com/v1 myresources in owned
// mode, reaching no target.
func testResource() *mirror.Resource { return faketarget.Unmirrored(config.AccessOwned) }

// newFakeTargetWriter is a Writer in owned mode for client "client" whose
// target answers object (default/x) to everything, and mirrors it.
func newFakeTargetWriter(t testing.TB, object string) (*Writer, *mirror.Resource, *faketarget.Echo) {
	t.Helper()
	fake, res := faketarget.NewEcho(t, object, config.AccessOwned)
	w := New(Options{Client: config.Client{Name: "client"}})
	return w, res, fake
}

// mirroredResource is the resource in owned mode over a target that
// target serves, its mirror holding objects (faketarget.Mirrored).
func mirroredResource(t testing.TB, target http.Handler, objects ...string) *mirror.Resource {
	return faketarget.Mirrored(t, target, config.AccessOwned, objects...)
}

const fakeObject = `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"default","uid":"u1","resourceVersion":"5","labels":{"vcluster.com/owner-vcluster":"client","vcluster.com/owner-project":"default"},"annotations":{"a":"b"}},"spec":{"a":0,"text":"hello"}}`

// TestLimitsWriteNothing: a write past a limit gets its Status and sends
// nothing to the target.
func TestLimitsWriteNothing(t *testing.T) {
	w, res, fake := newFakeTargetWriter(t, fakeObject)
	objectPath := "/apis/example.com/v1/namespaces/default/myresources/x"
	deepSpec := `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x"},"spec":` + string(nested(`{"a":`, "}", "1", 10000)) + `}`
	for _, c := range []struct {
		name, verb, contentType, body string
		code                          int32
		reason                        metav1.StatusReason
	}{
		{"too many JSON patch operations", "patch", "application/json-patch+json", string(jsonPatchOf(MaxJSONPatchOperations + 1)), 413, metav1.StatusReasonRequestEntityTooLarge},
		{"too many JSON patch operations, touching annotations", "patch", "application/json-patch+json",
			strings.TrimSuffix(string(jsonPatchOf(MaxJSONPatchOperations)), "]") + `,{"op":"remove","path":"/metadata/annotations/a"}]`, 413, metav1.StatusReasonRequestEntityTooLarge},
		{"JSON patch copy bomb", "patch", "application/json-patch+json", string(copyBomb(30)), 422, metav1.StatusReasonInvalid},
		{"JSON patch copy bomb, touching annotations", "patch", "application/json-patch+json",
			strings.TrimSuffix(string(copyBomb(30)), "]") + `,{"op":"remove","path":"/metadata/annotations/a"}]`, 422, metav1.StatusReasonInvalid},
		{"JSON patch nested too deep", "patch", "application/json-patch+json", `[{"op":"add","path":"/spec/b","value":` + string(nested("[", "]", "1", 10000)) + `}]`, 400, metav1.StatusReasonBadRequest},
		{"merge patch nested too deep", "patch", "application/merge-patch+json", `{"spec":` + string(nested(`{"a":`, "}", "1", 10000)) + `}`, 400, metav1.StatusReasonBadRequest},
		{"apply configuration nested too deep", "patch", "application/apply-patch+yaml", `{"spec":` + string(nested("[", "]", "1", 10000)) + `}`, 400, metav1.StatusReasonBadRequest},
		{"update nested too deep", "update", "application/json", deepSpec, 400, metav1.StatusReasonBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := w.Write(context.Background(), &Request{
				Resource: res, Verb: c.verb, Namespace: "default", Name: "x", Path: objectPath,
				Query: url.Values{}, ContentType: c.contentType, Body: []byte(c.body),
			})
			wantStatus(t, err, c.code, c.reason, "")
			if took := time.Since(start); took > quickly() {
				t.Errorf("answered in %v", took)
			}
			if got := described(fake.Writes()); len(got) > 0 {
				t.Fatalf("the target received %q", got)
			}
		})
	}
	req := &Request{Resource: res, Verb: "create", Namespace: "default", Path: "/apis/example.com/v1/namespaces/default/myresources",
		Query: url.Values{}, ContentType: "application/json", Body: []byte(strings.Replace(deepSpec, `"name":"x"`, `"name":"y"`, 1))}
	_, err := w.Write(context.Background(), req)
	wantStatus(t, err, 400, metav1.StatusReasonBadRequest, "the object provided is unrecognized (must be of type MyResource): couldn't get version/kind; json parse error: ")
	if got := described(fake.Writes()); len(got) > 0 {
		t.Fatalf("the target received %q", got)
	}

	// The harness does see writes: a good patch reaches the target.
	if _, err := w.Write(context.Background(), &Request{
		Resource: res, Verb: "patch", Namespace: "default", Name: "x", Path: objectPath,
		Query: url.Values{}, ContentType: "application/json-patch+json", Body: copyBomb(3),
	}); err != nil {
		t.Fatal(err)
	}
	if got := described(fake.Writes()); len(got) != 1 {
		t.Fatalf("the target received %q, want the one patch", got)
	}
}
