package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/crproxy/crproxy/internal/faketarget"
	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
)

const (
	collectionPath   = "/apis/example.com/v1/namespaces/default/myresources"
	metadataAccept   = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
	metadataListType = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
)

// readTarget is a fake target holding objects a to e in default (c and e
// labelled tier=web) and one in another namespace, and its resource
// mirrored in all mode.
func readTarget(t *testing.T) *mirror.Resource {
	target := faketarget.New(t)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		labels := ""
		if name == "c" || name == "e" {
			labels = `,"labels":{"tier":"web"}`
		}
		target.Add(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"` + name + `","namespace":"default"` + labels + `},"spec":{"text":"` + name + `"}}`)
	}
	target.Add(`{"apiVersion":"example.com/v1","kind":"MyResource","metadata":{"name":"x","namespace":"other"}}`)
	return target.Resource(config.AccessAll)
}

// read sends a GET of path (a collection when name is "") with query and
// Accept to the handler's get or list.
func read(res *mirror.Resource, name, query, accept string) *httptest.ResponseRecorder {
	path := collectionPath
	info := &request.RequestInfo{Verb: "list", Namespace: "default", Resource: "myresources"}
	if name != "" {
		path += "/" + name
		info.Verb, info.Name = "get", name
	}
	r := httptest.NewRequest(http.MethodGet, path+"?"+query, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h := &apiHandler{}
	if name != "" {
		h.get(rec, r, res, info)
	} else {
		h.list(rec, r, res, info)
	}
	return rec
}

// A GET answers the mirrored object's bytes as stored, its metadata as a
// PartialObjectMetadata, or the kube-apiserver's Status: 404 for a name
// the mirror lacks (before any conversion), 500 for a list's format.
func TestGetAnswers(t *testing.T) {
	res := readTarget(t)
	for _, c := range []struct {
		name, query, accept string
		code                int
		want                string // in the body
	}{
		{"b", "resourceVersion=0", "", 200, `"spec":{"text":"b"}`},
		{"b", "", "", 200, `"spec":{"text":"b"}`}, // consistent: the target holds it
		{"b", "resourceVersion=0", metadataAccept, 200, `"kind":"PartialObjectMetadata"`},
		{"nope", "resourceVersion=0", "", 404, `myresources.example.com \"nope\" not found`},
		{"nope", "resourceVersion=0", metadataListType, 404, `not found`},
		// A CR's Unstructured passes the apiserver's list check and fails
		// its conversion: 500, as a kube-apiserver answers.
		{"b", "resourceVersion=0", metadataListType, 500, `"message":"content is not a list"`},
		{"b", "resourceVersion=x", "", 400, `"reason":"BadRequest"`},
	} {
		t.Run(fmt.Sprintf("%s %s %s", c.name, c.query, c.accept), func(t *testing.T) {
			rec := read(res, c.name, c.query, c.accept)
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.want) {
				t.Fatalf("answer %d %s, want %d with %s", rec.Code, rec.Body, c.code, c.want)
			}
		})
	}
}

// A list answers the namespace's matching objects in name order, as a
// <Kind>List of the stored bytes at the mirror's resourceVersion; a
// limit pages it with continue tokens that resume after the last name,
// every object once, the last page without a token.
func TestListPages(t *testing.T) {
	res := readTarget(t)
	type list struct {
		APIVersion, Kind string
		Metadata         metav1.ListMeta
		Items            []struct {
			Metadata metav1.ObjectMeta
			Spec     map[string]string
		}
	}
	page := func(query string) list {
		t.Helper()
		rec := read(res, "", query, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("list %s: %d %s", query, rec.Code, rec.Body)
		}
		var l list
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.APIVersion != "example.com/v1" || l.Kind != "MyResourceList" || l.Metadata.ResourceVersion == "" {
			t.Fatalf("list %s: %s %s at %q", query, l.APIVersion, l.Kind, l.Metadata.ResourceVersion)
		}
		return l
	}
	names := func(l list) (out []string) {
		for _, it := range l.Items {
			if it.Metadata.Namespace != "default" || it.Spec["text"] != it.Metadata.Name {
				t.Errorf("item %s/%s with spec %v", it.Metadata.Namespace, it.Metadata.Name, it.Spec)
			}
			out = append(out, it.Metadata.Name)
		}
		return out
	}

	if got := strings.Join(names(page("resourceVersion=0")), ","); got != "a,b,c,d,e" {
		t.Errorf("whole list %s, want a,b,c,d,e", got)
	}
	if got := strings.Join(names(page("labelSelector=tier%3Dweb")), ","); got != "c,e" {
		t.Errorf("tier=web %s, want c,e", got)
	}
	var got []string
	query := "limit=2"
	for i := 0; ; i++ {
		l := page(query)
		got = append(got, strings.Join(names(l), ","))
		if l.Metadata.Continue == "" {
			break
		}
		if i == 3 {
			t.Fatal("the pages do not end")
		}
		query = "limit=2&continue=" + url.QueryEscape(l.Metadata.Continue)
	}
	if strings.Join(got, " | ") != "a,b | c,d | e" {
		t.Errorf("pages %q, want a,b | c,d | e", got)
	}
	if rec := read(res, "", "limit=2&continue=garbage", ""); rec.Code != http.StatusBadRequest {
		t.Errorf("a malformed continue token: %d %s, want 400", rec.Code, rec.Body)
	}
}

// A list asked as metadata answers a PartialObjectMetadataList; asked as
// one object's metadata it is the apiserver's 406.
func TestListFormats(t *testing.T) {
	res := readTarget(t)
	rec := read(res, "", "resourceVersion=0&labelSelector=tier%3Dweb", metadataListType)
	var l metav1.PartialObjectMetadataList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("metadata list: %d %s (%v)", rec.Code, rec.Body, err)
	}
	if l.Kind != "PartialObjectMetadataList" || len(l.Items) != 2 || l.Items[0].Name != "c" || l.Items[1].Name != "e" {
		t.Errorf("metadata list %s, want c and e", rec.Body)
	}
	if rec := read(res, "", "resourceVersion=0", metadataAccept); rec.Code != http.StatusNotAcceptable {
		t.Errorf("a list as one object's metadata: %d %s, want 406", rec.Code, rec.Body)
	}
}
