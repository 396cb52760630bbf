package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Accept headers below, and what kube-apiserver 1.36 answers them with
// for a custom resource (handlers.RequestScope.AllowsMediaTypeTransform
// with the CRD's serializers), minus the media types crproxy does not
// encode (YAML, protobuf, CBOR), which fall through to the next clause.
func TestNegotiate(t *testing.T) {
	const (
		metaV1          = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
		metaListV1      = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
		metadataClient  = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
		metadataListCli = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
		kubectlTable    = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	)
	for _, c := range []struct {
		accept string
		want   output
		// notAcceptable: 406 instead of want.
		notAcceptable bool
	}{
		{accept: "", want: output{format: formatJSON}},
		{accept: "application/json", want: output{format: formatJSON}},
		{accept: "*/*", want: output{format: formatJSON}},
		{accept: "application/*", want: output{format: formatJSON}},
		{accept: "application/json;stream=watch", want: output{format: formatJSON}},
		{accept: "application/json, */*", want: output{format: formatJSON}},
		{accept: "application/vnd.kubernetes.protobuf,application/json", want: output{format: formatJSON}},
		{accept: metaV1, want: output{format: formatMetadata, metaVersion: "v1"}},
		{accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1", want: output{format: formatMetadata, metaVersion: "v1beta1"}},
		{accept: metaListV1, want: output{format: formatMetadataList, metaVersion: "v1"}},
		{accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1", want: output{format: formatMetadataList, metaVersion: "v1beta1"}},
		{accept: metadataClient, want: output{format: formatMetadata, metaVersion: "v1"}},
		{accept: metadataListCli, want: output{format: formatMetadataList, metaVersion: "v1"}},
		{accept: kubectlTable, want: output{format: formatTable, metaVersion: "v1"}},
		{accept: kubectlTable + ",*/*", want: output{format: formatTable, metaVersion: "v1"}},
		{accept: "application/json;as=Table;v=v1beta1;g=meta.k8s.io", want: output{format: formatTable, metaVersion: "v1beta1"}},
		// Preference order decides, not the header's order.
		{accept: "application/json;q=0.5," + metaV1, want: output{format: formatMetadata, metaVersion: "v1"}},
		// Conversions the apiserver does not know are skipped.
		{accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2,application/json", want: output{format: formatJSON}},
		{accept: "application/json;as=PartialObjectMetadata,application/json", want: output{format: formatJSON}},
		{accept: "application/json;as=Widget;g=example.com;v=v1,application/json", want: output{format: formatJSON}},
		{accept: "application/json;sv=v2,application/json;as=Table;v=v1;g=meta.k8s.io", want: output{format: formatTable, metaVersion: "v1"}},
		// Nothing crproxy can serve.
		{accept: "application/vnd.kubernetes.protobuf", notAcceptable: true},
		{accept: "application/yaml", notAcceptable: true},
		{accept: "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", notAcceptable: true},
		{accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2", notAcceptable: true},
		{accept: "application/json;as=Table;g=meta.k8s.io;v=v2", notAcceptable: true},
		{accept: "application/json;stream=chunks", notAcceptable: true},
		{accept: "text/html", notAcceptable: true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/apis/example.com/v1/widgets", nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		got, err := negotiate(r)
		if c.notAcceptable {
			status := statusOf(err)
			if err == nil || status.Code != http.StatusNotAcceptable || status.Reason != "NotAcceptable" ||
				status.Message != "only the following media types are accepted: application/json" {
				t.Errorf("Accept %q: %v, %v; want 406 NotAcceptable listing application/json", c.accept, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Accept %q: %v, %v; want %v", c.accept, got, err, c.want)
		}
	}
}

// TestConversionError: the apiserver's answers to a list conversion on a
// get (500, as for any custom resource) and an object conversion on a
// list (406).
func TestConversionError(t *testing.T) {
	meta := output{format: formatMetadata, metaVersion: "v1"}
	list := output{format: formatMetadataList, metaVersion: "v1"}
	for _, c := range []struct {
		out     output
		list    bool
		code    int32
		reason  metav1.StatusReason
		message string
	}{
		{out: list, list: false, code: http.StatusInternalServerError, message: "content is not a list"},
		{out: meta, list: true, code: http.StatusNotAcceptable, reason: metav1.StatusReasonNotAcceptable, message: "you requested PartialObjectMetadata, but the requested object is a list (*unstructured.UnstructuredList)"},
		{out: meta, list: false},
		{out: list, list: true},
		{out: output{format: formatTable, metaVersion: "v1"}, list: true},
	} {
		err := conversionError(c.out, c.list)
		if c.code == 0 {
			if err != nil {
				t.Errorf("%v, list %v: %v; want nil", c.out, c.list, err)
			}
			continue
		}
		status := statusOf(err)
		if status.Code != c.code || status.Reason != c.reason || status.Message != c.message {
			t.Errorf("%v, list %v: %#v; want %d %q %q", c.out, c.list, status, c.code, c.reason, c.message)
		}
	}
}

// TestNegotiateDiscovery: /apis answers the aggregated document to any
// clause that asks for apidiscovery.k8s.io/v2 (wherever it is), the legacy
// document otherwise; v2beta1 is gone in 1.36; the other discovery paths
// are legacy only.
func TestNegotiateDiscovery(t *testing.T) {
	const (
		v2      = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
		v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
	)
	for _, c := range []struct {
		accept        string
		root          bool
		aggregated    bool
		notAcceptable bool
	}{
		{accept: "", root: true},
		{accept: "application/json", root: true},
		{accept: v2, root: true, aggregated: true},
		{accept: v2 + ";profile=nopeer", root: true, aggregated: true},
		{accept: v2 + "," + v2beta1, root: true, aggregated: true},                       // the aggregator
		{accept: v2 + "," + v2beta1 + ",application/json", root: true, aggregated: true}, // client-go
		{accept: "application/json," + v2, root: true, aggregated: true},
		{accept: "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList," + v2, root: true, aggregated: true},
		{accept: v2beta1 + ",application/json", root: true},
		{accept: v2beta1, root: true, notAcceptable: true},
		{accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscovery", root: true, notAcceptable: true},
		{accept: v2, root: false, notAcceptable: true},
		{accept: v2 + ",application/json", root: false},
		{accept: "application/vnd.kubernetes.protobuf", root: false, notAcceptable: true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/apis", nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		aggregated, err := negotiateDiscovery(r, c.root)
		if c.notAcceptable {
			if statusOf(err).Code != http.StatusNotAcceptable {
				t.Errorf("Accept %q (root %v): %v, %v; want 406", c.accept, c.root, aggregated, err)
			}
			continue
		}
		if err != nil || aggregated != c.aggregated {
			t.Errorf("Accept %q (root %v): aggregated %v, %v; want %v", c.accept, c.root, aggregated, err, c.aggregated)
		}
	}
}
