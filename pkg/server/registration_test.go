package server

import (
	"context"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// discoverySource is a DiscoverySource whose unserved group/versions are
// set by the test.
type discoverySource struct{ unserved map[schema.GroupVersion]bool }

func (d discoverySource) DiscoveryFingerprint(gv schema.GroupVersion) string { return gv.String() }
func (d discoverySource) DiscoveryChanged() <-chan struct{}                  { return nil }
func (d discoverySource) Unserved(gv schema.GroupVersion) bool               { return d.unserved[gv] }

// TestRegistrationWithdrawsUnservedGroupVersions: the APIService of a
// group/version whose target serves none of its resources is deleted (a
// kube-apiserver lists no group/version that none of its CRDs serves), the
// others are applied; an APIService already gone is no error, one that
// may not be deleted is an error that holds back no other APIService, and
// without a discovery source every APIService is applied.
func TestRegistrationWithdrawsUnservedGroupVersions(t *testing.T) {
	served := schema.GroupVersion{Group: "served.example.com", Version: "v1"}
	unserved := schema.GroupVersion{Group: "unserved.example.com", Version: "v1"}
	first := schema.GroupVersion{Group: "first.example.com", Version: "v1"}
	for _, c := range []struct {
		name      string
		discovery DiscoverySource
		gone      bool // the unserved APIService does not exist
		forbidden bool // deleting it is forbidden
		applied   []string
		deleted   []string
	}{
		{"an unserved group/version is withdrawn", discoverySource{map[schema.GroupVersion]bool{unserved: true}}, false, false, []string{"v1.served.example.com"}, []string{"v1.unserved.example.com"}},
		{"an APIService already withdrawn", discoverySource{map[schema.GroupVersion]bool{unserved: true}}, true, false, []string{"v1.served.example.com"}, []string{"v1.unserved.example.com"}},
		{"a withdrawal refused holds back no other", discoverySource{map[schema.GroupVersion]bool{first: true}}, false, true, []string{"v1.served.example.com", "v1.unserved.example.com"}, []string{"v1.first.example.com"}},
		{"served again", discoverySource{}, false, false, []string{"v1.served.example.com", "v1.unserved.example.com"}, nil},
		{"no discovery source", nil, false, false, []string{"v1.served.example.com", "v1.unserved.example.com"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			var applied, deleted []string
			client.PrependReactor("patch", "apiservices", func(a k8stesting.Action) (bool, runtime.Object, error) {
				applied = append(applied, a.(k8stesting.PatchAction).GetName())
				return true, nil, nil
			})
			client.PrependReactor("delete", "apiservices", func(a k8stesting.Action) (bool, runtime.Object, error) {
				name := a.(k8stesting.DeleteAction).GetName()
				deleted = append(deleted, name)
				switch {
				case c.gone:
					return true, nil, apierrors.NewNotFound(apiServiceResource.GroupResource(), name)
				case c.forbidden:
					return true, nil, apierrors.NewForbidden(apiServiceResource.GroupResource(), name, nil)
				}
				return true, nil, nil
			})
			gvs := []schema.GroupVersion{served, unserved}
			if c.forbidden {
				gvs = []schema.GroupVersion{first, served, unserved}
			}
			r := &Registration{Client: client, ServiceNamespace: "crproxy", ServiceName: "crproxy", Port: 443, GroupVersions: gvs, Discovery: c.discovery}
			if err := r.Apply(context.Background()); (err != nil) != c.forbidden {
				t.Fatalf("Apply: %v", err)
			}
			if !slices.Equal(applied, c.applied) || !slices.Equal(deleted, c.deleted) {
				t.Fatalf("applied %v, deleted %v; want applied %v, deleted %v", applied, deleted, c.applied, c.deleted)
			}
		})
	}
}
