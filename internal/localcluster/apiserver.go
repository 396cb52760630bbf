package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminUser is the user of the admin kubeconfig: a member of system:masters.
const AdminUser = "crproxy-admin"

// FrontProxyClientName is the common name of the aggregator's client
// certificate, the one name allowed by --requestheader-allowed-names.
const FrontProxyClientName = "front-proxy-client"

// APIServerOptions tunes one kube-apiserver.
type APIServerOptions struct {
	// ExtraArgs are appended to the flags the environment sets, and so win.
	ExtraArgs []string
	// Bare starts the apiserver without the kube-controller-manager that
	// every real cluster runs beside it. Only a test that is about the
	// apiserver alone (or must not have controllers act) sets it.
	Bare bool
}

// APIServer is one kube-apiserver with its own etcd prefix, certificate
// authorities and admin kubeconfig.
type APIServer struct {
	// Name is also its etcd prefix (/<name>) and its folder's name.
	Name string
	// Port is its loopback HTTPS port; it survives a restart.
	Port int
	// URL is https://127.0.0.1:<port>.
	URL string
	// Dir holds its certificates, kubeconfig and log.
	Dir string
	// KubeconfigPath is the admin kubeconfig.
	KubeconfigPath string
	// LogPath is the file the apiserver writes its log to.
	LogPath string
	// CA signs the serving certificate and the client certificates the
	// apiserver accepts.
	CA *CertificateAuthority
	// FrontProxyCA is the aggregation layer's request-header CA.
	FrontProxyCA *CertificateAuthority
	// ControllerManager runs beside the apiserver (nil when started Bare).
	ControllerManager *ControllerManager

	kubectl string
	admin   *rest.Config
	proc    *process
}

func newAPIServer(binDir, dir, name, etcdURL string, opts APIServerOptions) (*APIServer, error) {
	path, err := requireBinary(binDir, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	kubectl, err := requireBinary(binDir, "kubectl")
	if err != nil {
		return nil, err
	}
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &APIServer{
		Name:           name,
		Port:           port,
		URL:            "https://127.0.0.1:" + strconv.Itoa(port),
		Dir:            dir,
		KubeconfigPath: filepath.Join(dir, "admin.kubeconfig"),
		LogPath:        filepath.Join(dir, "kube-apiserver.log"),
		kubectl:        kubectl,
	}
	if s.CA, err = NewCertificateAuthority(name + "-ca"); err != nil {
		return nil, err
	}
	if s.FrontProxyCA, err = NewCertificateAuthority(name + "-front-proxy-ca"); err != nil {
		return nil, err
	}
	caPath := filepath.Join(pki, "ca.crt")
	if err := os.WriteFile(caPath, s.CA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	frontProxyCAPath := filepath.Join(pki, "front-proxy-ca.crt")
	if err := os.WriteFile(frontProxyCAPath, s.FrontProxyCA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	serving, err := s.CA.IssueServing("kube-apiserver", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := serving.Write(pki, "apiserver")
	if err != nil {
		return nil, err
	}
	frontProxyClient, err := s.FrontProxyCA.IssueClient(FrontProxyClientName)
	if err != nil {
		return nil, err
	}
	proxyCert, proxyKey, err := frontProxyClient.Write(pki, "front-proxy-client")
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := newServiceAccountKey()
	if err != nil {
		return nil, err
	}
	saKey := filepath.Join(pki, "sa.key")
	if err := os.WriteFile(saKey, saKeyPEM, 0o600); err != nil {
		return nil, err
	}
	if s.admin, err = s.ConfigFor(AdminUser, "system:masters"); err != nil {
		return nil, err
	}
	if err := WriteKubeconfig(s.KubeconfigPath, name, s.admin); err != nil {
		return nil, err
	}

	args := []string{
		"--etcd-servers=" + etcdURL,
		"--etcd-prefix=/" + name,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + pki,
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		"--client-ca-file=" + caPath,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// The aggregation layer: the client side of an APIService.
		"--requestheader-client-ca-file=" + frontProxyCAPath,
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + proxyCert,
		"--proxy-client-key-file=" + proxyKey,
		// Nothing would route to the kubernetes Service's endpoints: the
		// tests run no kube-proxy, and a lease reconciler would only write.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	}
	s.proc = &process{
		name:    "kube-apiserver " + name,
		path:    path,
		args:    append(args, opts.ExtraArgs...),
		logPath: s.LogPath,
	}
	if !opts.Bare {
		if s.ControllerManager, err = newControllerManager(binDir, dir, name, s, caPath, saKey); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start runs the apiserver (again, after Stop or Kill: same port, same data)
// and waits until it is ready, then starts its controller manager if that is
// not running and waits until it is healthy.
func (s *APIServer) Start(ctx context.Context) error {
	if err := s.proc.start(); err != nil {
		return err
	}
	if err := s.WaitReady(ctx, 90*time.Second); err != nil {
		return err
	}
	if s.ControllerManager != nil {
		return s.ControllerManager.start(ctx)
	}
	return nil
}

// Stop shuts the apiserver down gracefully (SIGTERM). The controller
// manager keeps running, as it does in a cluster whose apiserver restarts:
// it reconnects once the apiserver is back. StopAll stops both.
func (s *APIServer) Stop() {
	s.proc.stop(15 * time.Second)
}

// StopAll stops the controller manager, then the apiserver.
func (s *APIServer) StopAll() {
	if s.ControllerManager != nil {
		s.ControllerManager.stop()
	}
	s.Stop()
}

// Kill ends the apiserver at once (SIGKILL), as a crash would; the
// controller manager keeps running.
func (s *APIServer) Kill() {
	s.proc.kill()
}

// Restart stops the apiserver and starts it again in place.
func (s *APIServer) Restart(ctx context.Context) error {
	s.Stop()
	return s.Start(ctx)
}

// Running reports whether the process is up (not whether it is ready).
func (s *APIServer) Running() bool { return s.proc.running() }

// PID is the process id, 0 when stopped.
func (s *APIServer) PID() int { return s.proc.pid() }

// WaitReady polls /readyz until it answers 200 and the default namespace
// exists (the bootstrap controller creates it just after readiness).
func (s *APIServer) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := rest.HTTPClientFor(s.admin)
	if err != nil {
		return err
	}
	client.Timeout = 2 * time.Second
	ready := func(path string) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for {
		if ready("/readyz") && ready("/api/v1/namespaces/default") {
			return nil
		}
		select {
		case <-s.proc.done():
			return fmt.Errorf("kube-apiserver %s exited before it was ready (%v); log tail:\n%s", s.Name, s.proc.exitErr(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver %s not ready after %s; log tail:\n%s", s.Name, timeout, s.LogTail(40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the apiserver's log.
func (s *APIServer) LogTail(n int) string { return LogTail(s.LogPath, n) }

// RESTConfig returns a copy of the admin client configuration.
func (s *APIServer) RESTConfig() *rest.Config { return rest.CopyConfig(s.admin) }

// ConfigFor returns a client configuration that authenticates as user with
// groups, by a client certificate from the apiserver's CA.
func (s *APIServer) ConfigFor(user string, groups ...string) (*rest.Config, error) {
	kp, err := s.CA.IssueClient(user, groups...)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.CA.CertPEM,
			CertData: kp.CertPEM,
			KeyData:  kp.KeyPEM,
		},
		QPS:   1000,
		Burst: 2000,
	}, nil
}

// Kubectl runs the kubectl of bin/ against this apiserver as the admin and
// returns its combined output.
func (s *APIServer) Kubectl(ctx context.Context, args ...string) (string, error) {
	out, err := s.KubectlCmd(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %q: %w: %s", args, err, out)
	}
	return string(out), nil
}

// KubectlCmd prepares the kubectl of bin/ against this apiserver as the admin,
// for callers that need stdin or separate streams. Its discovery cache is
// this apiserver's own: kubectl keys the cache by host and port, and a port
// an earlier apiserver used would otherwise bring that apiserver's
// resource types along.
func (s *APIServer) KubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	flags := []string{"--kubeconfig=" + s.KubeconfigPath, "--cache-dir=" + filepath.Join(s.Dir, "kubectl-cache")}
	cmd := exec.CommandContext(ctx, s.kubectl, append(flags, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	return cmd
}

// WriteKubeconfig writes cfg (host, CA, client certificate or token) as a
// kubeconfig with one context named name.
func WriteKubeconfig(path, name string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return clientcmd.WriteToFile(*kc, path)
}

// WaitForAPIServiceAvailable waits until the APIService of the aggregated
// group/version (e.g. "example.com/v1") is Available, whether or not it
// has resources yet.
func (s *APIServer) WaitForAPIServiceAvailable(ctx context.Context, groupVersion string) error {
	group, version, _ := strings.Cut(groupVersion, "/")
	if out, err := s.Kubectl(ctx, "wait", "--for=condition=Available", "apiservice/"+version+"."+group, "--timeout=90s"); err != nil {
		return fmt.Errorf("APIService %s.%s did not become available: %w\n%s", version, group, err, out)
	}
	return nil
}

// WaitForAPIServiceAvailableOrAbsent waits until the APIService of the
// aggregated group/version (e.g. "example.com/v1") is Available, or does
// not exist (crproxy withdraws the APIService of a group/version its
// target serves no resource of).
func (s *APIServer) WaitForAPIServiceAvailableOrAbsent(ctx context.Context, groupVersion string) error {
	group, version, _ := strings.Cut(groupVersion, "/")
	name := version + "." + group
	for {
		out, err := s.Kubectl(ctx, "get", "apiservice", name, "--ignore-not-found", "-o", `jsonpath={.metadata.name}{"/"}{.status.conditions[?(@.type=="Available")].status}`)
		if out = strings.TrimSpace(out); err == nil && (out == "" || out == name+"/True") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("APIService %s neither became available nor was withdrawn: %v\n%s", name, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitForAPIService waits until the aggregated group/version (e.g.
// "example.com/v1") is served through this apiserver: its APIService is
// Available, the group's resources are in discovery, and a GET of the
// group/version passes the aggregator's proxy, three times in a row 200 ms
// apart. The aggregator re-publishes a group's discovery when the
// APIService's status changes, and kubectl misses the group's resources
// for a few hundred milliseconds then.
func (s *APIServer) WaitForAPIService(ctx context.Context, groupVersion string) error {
	if err := s.WaitForAPIServiceAvailable(ctx, groupVersion); err != nil {
		return err
	}
	group, _, _ := strings.Cut(groupVersion, "/")
	for stable := 0; stable < 3; {
		out, err := s.Kubectl(ctx, "api-resources", "--api-group="+group, "-o", "name")
		if err == nil && !strings.Contains(out, "."+group) {
			err = fmt.Errorf("no resources of %s in discovery", group)
		}
		if err == nil {
			out, err = s.Kubectl(ctx, "get", "--raw", "/apis/"+groupVersion)
		}
		if err == nil {
			stable++
		} else {
			stable = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never became reachable through %s: %v\n%s", groupVersion, s.Name, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
