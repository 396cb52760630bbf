package crproxytest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crproxy/crproxy/pkg/config"
)

// MyResources is the documentation's custom resource.
var MyResources = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "myresources"}

// MyResource is a MyResource namespace/name with spec.name set.
func MyResource(namespace, name, specName string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("MyResource")
	u.SetNamespace(namespace)
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, specName, "spec", "name")
	return u
}

// OwnedMyResource is MyResource carrying the owner labels of client name in
// project "default", as crproxy writes them: created straight at the
// target, it is that client's object.
func OwnedMyResource(namespace, name, specName, owner string) *unstructured.Unstructured {
	u := MyResource(namespace, name, specName)
	u.SetLabels(config.Client{Name: owner}.OwnerLabels())
	return u
}
