package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/internal/localcluster/clustertest"
)

// answer is an HTTP answer as a client of the cluster sees it.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

// status decodes the answer as a Status.
func (a answer) status(t *testing.T) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(a.body, &s); err != nil || s.Kind != "Status" {
		t.Fatalf("answer %d is not a Status: %v\n%s", a.code, err, a.body)
	}
	return s
}

// clientRequest sends one raw request to s as its admin.
func clientRequest(t *testing.T, ctx context.Context, s *localcluster.APIServer, method, path, contentType string, body []byte) answer {
	t.Helper()
	cfg := s.RESTConfig()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.Host, "/")+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	return send(t, httpClient, req)
}

// send does req with hc and reads the whole answer; a transport error
// fails the test.
func send(t *testing.T, hc *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: data}
}

// Bad input gets the Status a kube-apiserver would send, and nothing
// reaches the target.
func TestWriteBadInput(t *testing.T) {
	ctx := testContext(t)
	target := clustertest.NewAPIServer(t, "target")
	client := clustertest.NewAPIServer(t, "client")
	prepareWriteTarget(t, ctx, target)
	startProxy(t, client, crproxytest.Config("client", client, target))
	kubectlApplyOut(t, ctx, client, testResource)
	rvBefore := kubectl(t, ctx, target, "get", "myresources", "-o", "jsonpath={.metadata.resourceVersion}")

	const collection = "/apis/example.com/v1/namespaces/default/myresources"
	const item = collection + "/test-resource"
	object := func(apiVersion, kind, name, namespace string) []byte {
		return []byte(`{"apiVersion":"` + apiVersion + `","kind":"` + kind + `","metadata":{"name":"` + name + `","namespace":"` + namespace + `"},"spec":{"name":"bad"}}`)
	}
	huge := append([]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"huge"},"spec":{"name":"`), bytes.Repeat([]byte("x"), 3<<20)...)
	huge = append(huge, []byte(`"}}`)...)
	cases := []struct {
		name                string
		method, path, ctype string
		body                []byte
		code                int32
		reason              metav1.StatusReason
		message             string
	}{
		{"malformed JSON", "POST", collection, "application/json", []byte(`{"apiVersion":`), 400, metav1.StatusReasonBadRequest, ""},
		{"malformed YAML", "POST", collection, "application/yaml", []byte("apiVersion: [\n"), 400, metav1.StatusReasonBadRequest, ""},
		{"not an object", "POST", collection, "application/json", []byte(`["a"]`), 400, metav1.StatusReasonBadRequest, ""},
		{"another group/version", "POST", collection, "application/json", object("other.io/v1", "MyResource", "x", "default"), 400, metav1.StatusReasonBadRequest,
			"the API version in the data (other.io/v1) does not match the expected API version (example.com/v1)"},
		{"another kind", "POST", collection, "application/json", object("example.com/v1", "Secret", "x", "default"), 400, metav1.StatusReasonBadRequest, ""},
		{"name differs from the URL", "PUT", item, "application/json", object("example.com/v1", "MyResource", "other-name", "default"), 400, metav1.StatusReasonBadRequest,
			"the name of the object (other-name) does not match the name on the URL (test-resource)"},
		{"namespace differs from the URL", "POST", collection, "application/json", object("example.com/v1", "MyResource", "x", "kube-system"), 400, metav1.StatusReasonBadRequest,
			"the namespace of the provided object does not match the namespace sent on the request"},
		{"body over 3 MiB", "POST", collection, "application/json", huge, 413, metav1.StatusReasonRequestEntityTooLarge, "limit is 3145728"},
		{"protobuf body", "POST", collection, "application/vnd.kubernetes.protobuf", []byte{0x6b, 0x38, 0x73, 0}, 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"strategic merge patch", "PATCH", item, "application/strategic-merge-patch+json", []byte(`{"spec":{"name":"x"}}`), 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"malformed JSON patch", "PATCH", item, "application/json-patch+json", []byte(`{"op":"add"}`), 400, metav1.StatusReasonBadRequest, ""},
		{"JSON patch test fails", "PATCH", item, "application/json-patch+json", []byte(`[{"op":"test","path":"/spec/name","value":"nope"}]`), 422, metav1.StatusReasonInvalid, ""},
		{"merge patch not an object", "PATCH", item, "application/merge-patch+json", []byte(`[1]`), 400, metav1.StatusReasonBadRequest, ""},
		{"duplicate field with fieldValidation=Strict", "POST", collection + "?fieldValidation=Strict", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"dup"},"spec":{"name":"a","name":"b"}}`), 400, metav1.StatusReasonBadRequest, `MyResource in version "v1" cannot be handled as a MyResource: strict decoding error: duplicate field "spec.name"`},
		{"duplicate field and another kind with fieldValidation=Strict", "POST", collection + "?fieldValidation=Strict", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"Other","metadata":{"name":"dup"},"spec":{"name":"a","name":"b"}}`), 400, metav1.StatusReasonBadRequest, `Other in version "v1" cannot be handled as a Other: strict decoding error: duplicate field "spec.name"`},
		{"duplicate YAML key with fieldValidation=Strict", "POST", collection + "?fieldValidation=Strict", "application/yaml",
			[]byte("apiVersion: example.com/v1\nkind: MyResource\nmetadata: {name: dup}\nspec:\n  name: a\n  name: b\n"), 400, metav1.StatusReasonBadRequest, "MyResource in version \"v1\" cannot be handled as a MyResource: strict decoding error: yaml: unmarshal errors:\n  line 6: key \"name\" already set in map"},
		{"unknown field with fieldValidation=Strict (the target decides)", "POST", collection + "?fieldValidation=Strict", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"unknown"},"spec":{"bogus":1}}`), 400, metav1.StatusReasonBadRequest, `MyResource in version "v1" cannot be handled as a MyResource: strict decoding error: unknown field "spec.bogus"`},
		{"POST to an object's path", "POST", item, "application/json", object("example.com/v1", "MyResource", "test-resource", "default"), 405, metav1.StatusReasonMethodNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := clientRequest(t, ctx, client, c.method, c.path, c.ctype, c.body)
			s := a.status(t)
			if s.Code != c.code || a.code != int(c.code) || s.Reason != c.reason {
				t.Fatalf("got %d %s (Status code %d), want %d %s: %s", a.code, s.Reason, s.Code, c.code, c.reason, s.Message)
			}
			if !strings.Contains(s.Message, c.message) {
				t.Fatalf("message %q, want it to contain %q", s.Message, c.message)
			}
			if strings.Contains(c.path, "fieldValidation=Strict") {
				// crproxy decodes these itself: the answer is the one the
				// target gives the same request, word for word.
				native := clientRequest(t, ctx, target, c.method, c.path, c.ctype, c.body)
				if ns := native.status(t); ns.Code != s.Code || ns.Message != s.Message {
					t.Errorf("through crproxy %d %q; natively %d %q", s.Code, s.Message, ns.Code, ns.Message)
				}
			}
		})
	}
	wantNames(t, names(t, ctx, target), "test-resource")
	if rv := kubectl(t, ctx, target, "get", "myresources", "-o", "jsonpath={.metadata.resourceVersion}"); rv != rvBefore {
		t.Fatalf("test-resource changed at the target (resourceVersion %s -> %s)", rvBefore, rv)
	}

	t.Run("a namespaced resource's paths without a namespace", func(t *testing.T) {
		// As the CRD handler: only lists and watches span namespaces; a
		// create or deletecollection there is the plain 404 of a path
		// nobody serves.
		for _, method := range []string{"POST", "DELETE"} {
			body := object("example.com/v1", "MyResource", "no-namespace", "default")
			got := clientRequest(t, ctx, client, method, "/apis/example.com/v1/myresources", "application/json", body)
			native := clientRequest(t, ctx, target, method, "/apis/example.com/v1/myresources", "application/json", body)
			if got.code != http.StatusNotFound || got.code != native.code || !bytes.Equal(got.body, native.body) {
				t.Errorf("%s: through crproxy %d %q; natively %d %q", method, got.code, got.body, native.code, native.body)
			}
		}
		wantNames(t, names(t, ctx, target), "test-resource")
	})

	t.Run("the target's warnings reach the caller", func(t *testing.T) {
		a := clientRequest(t, ctx, client, "POST", collection+"?fieldValidation=Warn&dryRun=All", "application/json",
			[]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"warned"},"spec":{"bogus":1}}`))
		if a.code != 201 || !strings.Contains(strings.Join(a.header.Values("Warning"), "\n"), `unknown field \"spec.bogus\"`) {
			t.Fatalf("got %d, warnings %q", a.code, a.header.Values("Warning"))
		}
		wantNames(t, names(t, ctx, target), "test-resource")
	})
}
