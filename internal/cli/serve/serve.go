// Package serve is the `crproxy serve` verb: it mirrors the configured
// custom resources and serves them to the client cluster.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/mirror"
	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/server"
	"github.com/crproxy/crproxy/pkg/store"
	"github.com/crproxy/crproxy/pkg/writethrough"
)

// Options are the settings of one crproxy: the flags of `crproxy serve`.
type Options struct {
	// ConfigFile is the configuration (a vcluster.yaml plus client and
	// targets).
	ConfigFile string
	// DataDir holds the mirror's bbolt file and the persisted discovery.
	DataDir string
	// Serving is where and how to listen (k8s.io/apiserver's flags).
	Serving *options.SecureServingOptions
	// ServiceNamespace and ServiceName name the Service the APIServices
	// point at; ExternalName makes crproxy create it as an ExternalName
	// Service (empty: an in-cluster Service exists already).
	ServiceNamespace, ServiceName, ExternalName string
	// ServicePort is the Service's port the APIServices use; 0: the
	// secure port (an ExternalName Service, or a Service whose port is the
	// container's).
	ServicePort int
	// CABundleFile is the CA the APIServices trust for crproxy's serving
	// certificate; empty: the serving certificate itself, right for the
	// self-signed one.
	CABundleFile string
	// Register applies the Service and APIServices in the client cluster.
	Register bool
	// LeaderElect makes replicas elect one registrar with a Lease; all
	// of them serve.
	LeaderElect bool
	// Logger logs; a production zap logger at LogLevel when nil.
	Logger *zap.Logger
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Profiling serves pprof under /debug/pprof/ to authenticated callers.
	Profiling bool
	// RequestTimeout, MaxRequestsInFlight and MaxMutatingRequestsInFlight
	// are kube-apiserver's request limits (see server.Options).
	RequestTimeout                                   time.Duration
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
	// Ready, when set, is called once the server listens.
	Ready func(address string)
}

// platformFirstCheck bounds the wait at start for the management cluster's
// first answers; the mirror waits for them per target anyway.
const platformFirstCheck = 10 * time.Second

// NewOptions returns the defaults of `crproxy serve`.
func NewOptions() *Options {
	serving := options.NewSecureServingOptions()
	serving.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	serving.BindPort = 9443
	serving.ServerCert.CertDirectory = ""
	return &Options{
		DataDir:          "crproxy-data",
		Serving:          serving,
		ServiceNamespace: "crproxy",
		ServiceName:      "crproxy",
		ExternalName:     "localhost",
		Register:         true,
		LogLevel:         "info",

		RequestTimeout:              server.DefaultRequestTimeout,
		MaxRequestsInFlight:         server.DefaultMaxRequestsInFlight,
		MaxMutatingRequestsInFlight: server.DefaultMaxMutatingRequestsInFlight,
	}
}

// NewCommand returns `crproxy serve`.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Mirror the configured custom resources and serve them to the client cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigFile == "" {
				return errors.New("--config is required: a vcluster.yaml with experimental.proxy.customResources plus crproxy's client and targets sections. " +
					"Start from examples/crproxy.yaml (check yours with `crproxy config validate FILE`), or run `crproxy dev` (`make demo`) for a local demo environment")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Run(ctx, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "the configuration file")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "where the mirror persists its state")
	fs.StringVar(&o.ServiceNamespace, "service-namespace", o.ServiceNamespace, "namespace of the Service the APIServices point at")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "name of the Service the APIServices point at")
	fs.StringVar(&o.ExternalName, "external-name", o.ExternalName, "create the Service as an ExternalName Service to this host; empty when the Service exists in the cluster")
	fs.IntVar(&o.ServicePort, "service-port", o.ServicePort, "the Service's port the APIServices use (default: --secure-port)")
	fs.StringVar(&o.CABundleFile, "ca-bundle-file", o.CABundleFile, "PEM CA the APIServices trust for crproxy's certificate (default: the serving certificate)")
	fs.BoolVar(&o.Register, "register", o.Register, "register the Service and the APIServices in the client cluster")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "with several replicas: only the holder of the Lease <service-name>-registration in --service-namespace registers; all serve")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "serve Go's pprof profiles under /debug/pprof/ to authenticated callers of the client cluster")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "the longest a request but a watch may take; then it is answered 504, as by kube-apiserver")
	fs.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", o.MaxRequestsInFlight, "reads served at once (watches not counted); past it callers get 429; negative: no bound")
	fs.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", o.MaxMutatingRequestsInFlight, "writes served at once; past it callers get 429; negative: no bound")
	o.Serving.AddFlags(fs)
	return cmd
}

// Run runs crproxy until ctx ends.
func Run(ctx context.Context, o *Options) error {
	log := o.Logger
	if log == nil {
		level, err := zap.ParseAtomicLevel(o.LogLevel)
		if err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg := zap.NewProductionConfig()
		cfg.Level = level
		if log, err = cfg.Build(); err != nil {
			return err
		}
		defer func() { _ = log.Sync() }()
		// The Kubernetes libraries (authentication, serving) log through
		// klog: into the same structured log.
		klog.SetLogger(zapr.NewLogger(log.Named("k8s")))
	}
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(o.DataDir, "mirror.db"), store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("opening the mirror's store: %w", err)
	}
	defer st.Close()
	// The platform's permission to use each target, asked before
	// anything is mirrored (nil without a platform section).
	checker, err := platform.NewForConfig(cfg, nil, platform.Options{Logger: log.Named("platform")})
	if err != nil {
		return err
	}
	mirrorOpts := mirror.Options{Config: cfg, Store: st, DataDir: o.DataDir, Logger: log}
	if checker != nil {
		mirrorOpts.Gate = checker
	}
	m, err := mirror.New(mirrorOpts)
	if err != nil {
		return err
	}

	serving := *o.Serving
	if serving.ServerCert.CertDirectory == "" {
		serving.ServerCert.CertDirectory = filepath.Join(o.DataDir, "certs")
	}
	svcHost := o.ServiceName + "." + o.ServiceNamespace + ".svc"
	if err := serving.MaybeDefaultWithSelfSignedCerts("localhost", []string{svcHost, svcHost + ".cluster.local"}, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	authn := options.NewDelegatingAuthenticationOptions()
	authn.RemoteKubeConfigFile = cfg.Client.Kubeconfig
	authz := options.NewDelegatingAuthorizationOptions()
	authz.RemoteKubeConfigFile = cfg.Client.Kubeconfig
	clientRest, err := clientConfig(cfg.Client.Kubeconfig)
	if err != nil {
		return fmt.Errorf("client cluster: %w", err)
	}
	clientKube, err := kubernetes.NewForConfig(clientRest)
	if err != nil {
		return fmt.Errorf("client cluster: %w", err)
	}
	namespaces := writethrough.NewNamespaces(clientKube)
	writer := writethrough.New(writethrough.Options{Client: cfg.Client, Namespaces: namespaces, OnForbidden: checker.Recheck, Logger: log})
	srv, err := server.New(server.Options{Mirror: m, Writer: writer, Serving: &serving, Authentication: authn, Authorization: authz, Platform: checker, Logger: log, Profiling: o.Profiling,
		RequestTimeout: o.RequestTimeout, MaxRequestsInFlight: o.MaxRequestsInFlight, MaxMutatingRequestsInFlight: o.MaxMutatingRequestsInFlight})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	namespaces.Start(ctx)
	go checker.Run(ctx)
	if checker != nil {
		first, cancelFirst := context.WithTimeout(ctx, platformFirstCheck)
		if err := checker.WaitFirst(first); err != nil {
			log.Warn("the platform's management cluster did not answer at start; its targets are not served until it does", zap.Error(err))
		}
		cancelFirst()
	}
	go m.Run(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	// Register and report ready only once callers' certificates are
	// authenticated (see Server.WaitUntilAuthenticating).
	if err := srv.WaitUntilAuthenticating(ctx); err != nil {
		cancel()
		if runErr := <-served; runErr != nil {
			return runErr
		}
		return err
	}
	if o.Register {
		reg, err := registration(o, cfg, &serving, srv, m, log)
		if err != nil {
			return err
		}
		if o.LeaderElect {
			e := defaultElection(clientKube, o, log)
			go func() {
				if err := e.whileLeader(ctx, reg.Run); err != nil {
					log.Error("leader election for the registration", zap.Error(err))
				}
			}()
		} else {
			// Register before reporting ready, so callers can wait for
			// the APIService; Run keeps it registered.
			if err := reg.Apply(ctx); err != nil {
				log.Warn("registering the APIServices failed; retrying", zap.Error(err))
			}
			go reg.Run(ctx)
		}
	}
	if o.Ready != nil {
		o.Ready(srv.Address())
	}
	return <-served
}

func registration(o *Options, cfg *config.Config, serving *options.SecureServingOptions, srv *server.Server, m *mirror.Mirror, log *zap.Logger) (*server.Registration, error) {
	clientConfig, err := clientConfig(cfg.Client.Kubeconfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(clientConfig)
	if err != nil {
		return nil, err
	}
	caFile := o.CABundleFile
	if caFile == "" {
		caFile = serving.ServerCert.CertKey.CertFile
	}
	caBundle, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the serving certificate for the APIServices' caBundle: %w", err)
	}
	_, port, err := net.SplitHostPort(srv.Address())
	if err != nil {
		return nil, err
	}
	var gvs []schema.GroupVersion
	for _, gv := range m.GroupVersions() {
		gvs = append(gvs, gv.Proxy.GroupVersion)
	}
	var portNumber int
	fmt.Sscan(port, &portNumber)
	if o.ServicePort != 0 {
		portNumber = o.ServicePort
	}
	return &server.Registration{
		Client:           dyn,
		ServiceNamespace: o.ServiceNamespace,
		ServiceName:      o.ServiceName,
		ExternalName:     o.ExternalName,
		Port:             portNumber,
		CABundle:         caBundle,
		GroupVersions:    gvs,
		Discovery:        m,
		Logger:           log,
	}, nil
}

// clientConfig loads the client cluster's kubeconfig, or the in-cluster
// configuration when the path is empty.
func clientConfig(path string) (*rest.Config, error) {
	if path == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", path)
}
