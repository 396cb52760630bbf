package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crproxy/crproxy/pkg/store"
)

// FuzzParseReadOptions: the query of a get, list or watch parses into
// options or answers 400 or 422 as a Status, never a panic; parsed options
// are consistent with the query.
//
//	go test -run='^$' -fuzz='^FuzzParseReadOptions$' -fuzztime=10s ./pkg/server
func FuzzParseReadOptions(f *testing.F) {
	token := encodeContinue(7, "default", "a")
	for _, q := range []string{
		"",
		"labelSelector=team%3Da,env+in+(prod,dev),!gone&fieldSelector=metadata.name%3Dx,metadata.namespace!%3Dy",
		"fieldSelector=spec.a%3D1",
		"labelSelector=%3D%3D%3D",
		"resourceVersion=12&resourceVersionMatch=NotOlderThan",
		"resourceVersion=0&resourceVersionMatch=Exact",
		"resourceVersion=-1",
		"resourceVersion=18446744073709551616",
		"resourceVersionMatch=Exact",
		"limit=10&continue=" + token,
		"limit=-1",
		"limit=x",
		"continue=" + token + "&resourceVersion=3",
		"continue=bm90LWpzb24",
		"continue=%%%",
		"watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
		"sendInitialEvents=true",
		"sendInitialEvents=maybe",
		"timeoutSeconds=5&allowWatchBookmarks=true",
		"timeoutSeconds=x",
		"labelSelector=a&labelSelector=b",
	} {
		f.Add(q, false)
		f.Add(q, true)
	}
	obj, err := store.NewObject([]byte(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"default","uid":"u1","resourceVersion":"5","labels":{"team":"a"}}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawQuery string, watch bool) {
		query, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // net/http drops what it cannot parse
		}
		opts, err := parseReadOptions(query, watch)
		if err != nil {
			var status *apierrors.StatusError
			if !errors.As(err, &status) {
				t.Fatalf("error %v (%T) is not a Status, query %q", err, err, rawQuery)
			}
			if c := status.ErrStatus.Code; c != http.StatusBadRequest && c != http.StatusUnprocessableEntity {
				t.Fatalf("Status %d %q for query %q", c, status.ErrStatus.Message, rawQuery)
			}
			return
		}
		if opts.labels == nil || opts.fields == nil {
			t.Fatalf("no selectors for query %q", rawQuery)
		}
		for _, r := range opts.fields.Requirements() {
			if r.Field != "metadata.name" && r.Field != "metadata.namespace" {
				t.Fatalf("field selector on %s accepted", r.Field)
			}
		}
		switch rv := opts.ResourceVersion; {
		case rv == "" && opts.rv != 0:
			t.Fatalf("resourceVersion %d from none", opts.rv)
		case rv != "":
			if n, err := strconv.ParseUint(rv, 10, 64); err != nil || n != opts.rv {
				t.Fatalf("resourceVersion %q parsed as %d", rv, opts.rv)
			}
		}
		if (opts.Continue != "") != (opts.continue_ != nil) {
			t.Fatalf("continue %q decoded as %v", opts.Continue, opts.continue_)
		}
		if opts.Limit < 0 {
			t.Fatalf("limit %d accepted", opts.Limit)
		}
		_ = opts.matches(obj)
	})
}

// FuzzDecodeContinue: a continue token decodes, or is refused; one that
// decodes re-encodes to a token that decodes to the same key.
func FuzzDecodeContinue(f *testing.F) {
	for _, s := range []string{
		encodeContinue(7, "default", "a"),
		encodeContinue(1, "", "x"),
		"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJhIn0",
		"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiYSJ9",
		"eyJ2IjoidjEiLCJydiI6MSwic3RhcnQiOiJhIn0",
		"bnVsbA",
		"",
		"!!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeContinue(s)
		if err != nil {
			return
		}
		if tok.ResourceVersion == 0 || tok.Name == "" {
			t.Fatalf("incomplete token %q accepted: %+v", s, tok)
		}
		again, err := decodeContinue(encodeContinue(tok.ResourceVersion, tok.Namespace, tok.Name))
		if err != nil || *again != *tok {
			t.Fatalf("token %+v re-encoded decodes to %+v, %v", tok, again, err)
		}
	})
}
