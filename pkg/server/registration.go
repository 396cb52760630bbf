package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// FieldManager is the field manager of what crproxy applies.
const FieldManager = "crproxy"

// reregisterInterval is how often the Service and APIServices are applied
// again, so a deleted or edited registration comes back.
const reregisterInterval = 30 * time.Second

var (
	apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	serviceResource    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	namespaceResource  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Registration is how the client kube-apiserver reaches crproxy: a Service
// and one APIService per proxied group/version.
type Registration struct {
	// Client talks to the client cluster.
	Client dynamic.Interface
	// ServiceNamespace and ServiceName name the Service the APIServices
	// point at.
	ServiceNamespace, ServiceName string
	// ExternalName, when set, makes crproxy create the Service itself as
	// an ExternalName Service (e.g. "localhost" when crproxy runs beside
	// the client's apiserver). Empty: the Service exists (in-cluster).
	ExternalName string
	// Port is the port the APIServices use.
	Port int
	// CABundle verifies crproxy's serving certificate.
	CABundle []byte
	// GroupVersions are the proxied group/versions.
	GroupVersions []schema.GroupVersion
	// Discovery, when set, says when what crproxy serves as discovery
	// changes: each APIService then carries the new fingerprint in its
	// discoveryAnnotation, and the change to it makes the client's
	// aggregator read crproxy's discovery and OpenAPI v2 again at once
	// (instead of at its one-minute refresh; its OpenAPI v3 index is read
	// again only for a new APIService, or after a failed read).
	Discovery DiscoverySource
	// Logger logs; zap.NewNop when nil.
	Logger *zap.Logger
}

// DiscoverySource is what the registration needs of the mirror.
type DiscoverySource interface {
	// DiscoveryFingerprint identifies the discovery crproxy serves for
	// gv, the same on every replica that discovered the same.
	DiscoveryFingerprint(gv schema.GroupVersion) string
	// DiscoveryChanged is closed at the next change of a fingerprint, or
	// of Unserved.
	DiscoveryChanged() <-chan struct{}
	// Unserved reports whether the target is known to serve none of gv's
	// resources: gv's APIService is then withdrawn.
	Unserved(gv schema.GroupVersion) bool
}

// discoveryAnnotation on an APIService is the fingerprint of the discovery
// crproxy serves for its group/version.
const discoveryAnnotation = "crproxy.dev/discovery"

// Run applies the registration now, every reregisterInterval, and at
// every change of discovery until ctx ends.
func (r *Registration) Run(ctx context.Context) {
	if r.Logger == nil {
		r.Logger = zap.NewNop()
	}
	for {
		var changed <-chan struct{}
		if r.Discovery != nil {
			changed = r.Discovery.DiscoveryChanged()
		}
		if err := r.Apply(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Warn("registering the APIServices failed; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reregisterInterval):
		case <-changed:
		}
	}
}

// Apply applies the Service (and its namespace) and the APIServices once,
// with server-side apply. The APIService of a group/version whose target
// is known to serve none of its resources (Discovery.Unserved) is deleted
// instead, as kube-apiserver withdraws the APIService of a group/version
// none of its CRDs serves any longer: the client's discovery then no longer
// lists the group/version. Listed with no resources, it would keep clients'
// discovery caches from forgetting what they last read of it (kubectl
// writes no cache file for a group/version without resources, and keeps
// using the last one it wrote), so a CRD created anew in another scope
// would be used in the old one.
func (r *Registration) Apply(ctx context.Context) error {
	apply := func(gvr schema.GroupVersionResource, namespace string, obj map[string]any) error {
		u := &unstructured.Unstructured{Object: obj}
		var ri dynamic.ResourceInterface = r.Client.Resource(gvr)
		if namespace != "" {
			ri = r.Client.Resource(gvr).Namespace(namespace)
		}
		_, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return err
	}
	labels := map[string]any{"app.kubernetes.io/managed-by": "crproxy"}
	apiServiceMeta := func(gv schema.GroupVersion) map[string]any {
		meta := map[string]any{"name": gv.Version + "." + gv.Group}
		if r.Discovery != nil {
			meta["annotations"] = map[string]any{discoveryAnnotation: r.Discovery.DiscoveryFingerprint(gv)}
		}
		// With an in-cluster Service a deployment tool (the Helm chart)
		// owns the APIServices and their labels: Helm sets
		// managed-by=Helm by server-side apply, and a label forced by
		// crproxy would fail the next helm upgrade with a conflict. Only
		// when crproxy creates everything itself does it say so.
		if r.ExternalName != "" {
			meta["labels"] = labels
		}
		return meta
	}
	if r.ExternalName != "" {
		if err := apply(namespaceResource, "", map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": r.ServiceNamespace, "labels": labels},
		}); err != nil {
			return err
		}
		if err := apply(serviceResource, r.ServiceNamespace, map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": r.ServiceName, "namespace": r.ServiceNamespace, "labels": labels},
			"spec": map[string]any{
				"type":         "ExternalName",
				"externalName": r.ExternalName,
				"ports":        []any{map[string]any{"name": "https", "port": int64(r.Port), "protocol": "TCP"}},
			},
		}); err != nil {
			return err
		}
	}
	// A withdrawal that fails (an RBAC without delete) holds back no
	// other APIService.
	var withdrawals error
	for _, gv := range r.GroupVersions {
		if r.Discovery != nil && r.Discovery.Unserved(gv) {
			withdrawals = errors.Join(withdrawals, r.withdraw(ctx, gv))
			continue
		}
		if err := apply(apiServiceResource, "", map[string]any{
			"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
			"metadata": apiServiceMeta(gv),
			"spec": map[string]any{
				"group":                gv.Group,
				"version":              gv.Version,
				"groupPriorityMinimum": int64(1000),
				"versionPriority":      int64(15),
				"caBundle":             base64.StdEncoding.EncodeToString(r.CABundle),
				"service": map[string]any{
					"namespace": r.ServiceNamespace,
					"name":      r.ServiceName,
					"port":      int64(r.Port),
				},
			},
		}); err != nil {
			return err
		}
	}
	return withdrawals
}

// withdraw deletes gv's APIService, if it exists.
func (r *Registration) withdraw(ctx context.Context, gv schema.GroupVersion) error {
	name := gv.Version + "." + gv.Group
	err := r.Client.Resource(apiServiceResource).Delete(ctx, name, metav1.DeleteOptions{})
	switch {
	case err == nil && r.Logger != nil:
		r.Logger.Info("the target serves none of the group/version's resources; withdrew its APIService", zap.String("apiService", name))
	case err == nil, apierrors.IsNotFound(err):
	default:
		return fmt.Errorf("withdrawing APIService %s: %w", name, err)
	}
	return nil
}
