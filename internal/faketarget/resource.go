package faketarget

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/store"
)

// Client is the client cluster the fake target's resources are proxied
// for: an owned-mode mirror selects its owner labels.
var Client = config.Client{Name: "client", Project: "default"}

// Unmirrored is GVR described in access mode, with no target and no
// mirror: for request logic that reaches neither (decoding, limits).
func Unmirrored(access config.AccessMode) *mirror.Resource {
	res := mirror.NewResource(GVR, metav1.APIResource{Name: GVR.Resource, Namespaced: true, Kind: Kind, Verbs: metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},
		metav1.APIResource{Name: GVR.Resource + "/status", Namespaced: true, Kind: Kind, Verbs: metav1.Verbs{"get", "patch", "update"}})
	res.Access = access
	return res
}

// Mirrored is GVR proxied in access mode to a target that handler serves
// (any fake of the test's own), with a mirror (a bbolt cache) that holds
// objects (JSON) at the resourceVersion of the last of them, 5 without
// any.
func Mirrored(t testing.TB, handler http.Handler, access config.AccessMode, objects ...string) *mirror.Resource {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	host, _ := url.Parse(srv.URL)
	var objs []*store.Object
	rv := uint64(5)
	for _, j := range objects {
		o, err := store.NewObject([]byte(j))
		if err != nil {
			t.Fatal(err)
		}
		objs, rv = append(objs, o), o.ResourceVersion
	}
	return mirrored(t, mirror.NewTargetAt(TargetID, host, srv.Client()), access, objs, rv)
}

// mirrored is GVR at tgt in access mode, its mirror holding objs at rv
// and selecting Client's objects in owned mode (objs as given: a test may
// put another client's object in it).
func mirrored(t testing.TB, tgt *mirror.Target, access config.AccessMode, objs []*store.Object, rv uint64) *mirror.Resource {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "mirror.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	res := Unmirrored(access)
	res.Target = tgt
	res.Selector = labels.Everything()
	if access == config.AccessOwned {
		res.Selector = labels.SelectorFromSet(Client.OwnerLabels())
	}
	res.Cache = st.Cache(store.Key{Target: tgt.ID, Group: GVR.Group, Version: GVR.Version, Resource: GVR.Resource})
	if err := res.Cache.Replace(objs, rv); err != nil {
		t.Fatal(err)
	}
	return res
}
