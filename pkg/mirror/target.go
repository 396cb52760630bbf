package mirror

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/reconnect"
)

// DialTimeout bounds a TCP connection to a target: a target that does not
// answer must not hold readers or writers for the OS's minutes.
const DialTimeout = 5 * time.Second

// Target is one target cluster as this client sees it: every client built
// here impersonates the client identity, so the target's RBAC for
// loft:vcluster:p-<project>:<name> decides what crproxy may do.
type Target struct {
	// ID is "<project>/<name>", unique among targets.
	ID string
	// Config is the target's configuration entry.
	Config config.Target
	// Identity is the impersonated user.
	Identity string

	// Host is the target's base URL, e.g. https://10.0.0.1:6443, or one
	// with a path (https://platform/kubernetes/project/p/virtualcluster/x)
	// that every request goes below.
	Host *url.URL

	// The clients every request to the target goes through, all as the
	// identity; callers outside the mirror use Target's methods
	// (target_access.go).
	rest      *rest.Config
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface
	kube      kubernetes.Interface
	// metadata lists objects' metadata only (protobuf): what a consistent
	// read asks of the target (selection_state.go).
	metadata metadata.Interface
	// httpClient sends raw requests as the identity (impersonation and
	// credentials included, no retries). The other clients use it too:
	// one connection pool per target.
	httpClient *http.Client
	// Connection tracks whether the target answers.
	Connection *reconnect.Tracker

	// ownerKinds are the group/kinds proxied to this target: the
	// passthrough owners (owner_view.go).
	ownerKinds ownerKinds
	// discoveryPoller tells the group/versions when the target's API
	// changes.
	discoveryPoller *discoveryPoller
	// crds is what crproxy knows of the target's CRDs of proxied
	// resources: each version's warnings, and their generations
	// (target_crds.go).
	crds targetCRDs
}

// TargetID is the ID of a target entry: "<project>/<name>".
func TargetID(t config.Target) string { return t.Project + "/" + t.Name }

// NewTarget builds the clients of a target from its kubeconfig (base, when
// not nil, replaces loading the file: tests and the dev environment pass one).
func NewTarget(t config.Target, identity string, base *rest.Config, conn reconnect.Options) (*Target, error) {
	cfg := base
	if cfg == nil {
		var err error
		cfg, err = clientcmd.BuildConfigFromFlags("", t.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("target %s: loading kubeconfig %s: %w", TargetID(t), t.Kubeconfig, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: identity}
	cfg.UserAgent = "crproxy/" + identity
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 200, 400
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	cfg.Wrap(failFast)
	target := &Target{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return recordFailures(rt, func() *reconnect.Tracker { return target.Connection })
	})
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				target.crds.observe(req, resp)
			}
			return resp, err
		})
	})
	// One HTTP client, so one connection pool and one set of TLS
	// sessions, for everything crproxy asks of the target: the mirror,
	// writes, namespaces, printer columns, OpenAPI and probes.
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	host, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, err
	}
	*target = Target{
		httpClient: httpClient,
		Host:       host,
		ID:         TargetID(t),
		Config:     t,
		Identity:   identity,
		dynamic:    dyn,
		discovery:  kube.Discovery(),
		kube:       kube,
		metadata:   meta,
	}
	target.discoveryPoller = newDiscoveryPoller(target)
	conn.Probe = target.probe
	target.Connection = reconnect.NewTracker(target.ID, conn)
	return target, nil
}

// probe asks the target's /readyz: cheap, and readable by any identity
// under the default RBAC (system:public-info-viewer).
func (t *Target) probe(ctx context.Context) error {
	return t.discovery.RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
}

// ClusterUID identifies the target cluster: the UID of its kube-system
// namespace, which changes only when the cluster is rebuilt.
func (t *Target) ClusterUID(ctx context.Context) (string, error) {
	ns, err := t.kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return string(ns.UID), nil
}
