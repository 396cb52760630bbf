package writethrough

import (
	"context"
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/warning"

	"github.com/crproxy/crproxy/internal/faketarget"
)

// A create's or update's duplicate fields answer, warn or pass by
// fieldValidation, in the kube-apiserver's words; a patch's keep its own.
func TestDecodeFieldValidation(t *testing.T) {
	const dup = `{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x"},"spec":{"maxSize":1,"maxSize":2}}`
	const wrongKind = `{"apiVersion":"example.com/v1","kind":"Other","metadata":{"name":"x"},"spec":{"maxSize":1,"maxSize":2}}`
	for _, c := range []struct {
		name, body, validation, contentType string
		wantErr, wantWarning                string
	}{
		{name: "Strict", body: dup, validation: "Strict",
			wantErr: `MyResource in version "v1" cannot be handled as a MyResource: strict decoding error: duplicate field "spec.maxSize"`},
		{name: "Strict, YAML", body: "apiVersion: example.com/v1\nkind: MyResource\nmetadata: {name: x}\nspec:\n  maxSize: 1\n  maxSize: 2\n", validation: "Strict", contentType: "application/yaml",
			wantErr: `MyResource in version "v1" cannot be handled as a MyResource: strict decoding error: yaml: unmarshal errors:` + "\n" + `  line 6: key "maxSize" already set in map`},
		{name: "Strict, another kind", body: wrongKind, validation: "Strict",
			wantErr: `Other in version "v1" cannot be handled as a Other: strict decoding error: duplicate field "spec.maxSize"`},
		{name: "Warn, another kind", body: wrongKind, validation: "Warn", wantWarning: `duplicate field "spec.maxSize"`,
			wantErr: `Other in version "v1" cannot be handled as a MyResource: the kind in the data does not match the resource`},
		{name: "Warn", body: dup, validation: "Warn", wantWarning: `duplicate field "spec.maxSize"`},
		{name: "default", body: dup, wantWarning: `duplicate field "spec.maxSize"`},
		{name: "Ignore", body: dup, validation: "Ignore"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recorded := &faketarget.Warnings{}
			ctx := warning.WithWarningRecorder(context.Background(), recorded)
			req := &Request{Resource: testResource(), Verb: "create", Namespace: "default", ContentType: c.contentType,
				Body: []byte(c.body), Query: url.Values{"fieldValidation": {c.validation}}}
			_, err := decodeObject(ctx, req)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.wantErr != "" && (!apierrors.IsBadRequest(err) || err.Error() != c.wantErr):
				t.Fatalf("error %v\nwant 400 %s", err, c.wantErr)
			}
			got := ""
			warnings := recorded.List()
			if len(warnings) > 0 {
				got = warnings[0]
			}
			if got != c.wantWarning || len(warnings) > 1 {
				t.Errorf("warnings %q, want %q", warnings, c.wantWarning)
			}
		})
	}
	if _, err := decodeDocument(context.Background(), []byte(`{"spec":{"a":1,"a":2}}`), false, "Strict"); err == nil || err.Error() != `strict decoding error: duplicate field "spec.a"` {
		t.Errorf("a merge patch's duplicate under Strict: %v", err)
	}
}
