package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ControllerManagerUser is the user the controller manager authenticates as,
// the one kube-apiserver's bootstrap RBAC grants system:kube-controller-manager.
const ControllerManagerUser = "system:kube-controller-manager"

// Controllers are the kube-controller-manager controllers every test cluster
// runs: those a real cluster has that meet crproxy (namespace deletion, the
// garbage collector, quota), the service-account controllers that give pods
// and controllers their identities, RBAC role aggregation, and the
// cronjob controller (kubectl's events case reads its event). Controllers
// for nodes, pods and the other workloads are left out: nothing in the
// tests runs pods, and each one costs CPU on a 2-core machine.
var Controllers = []string{
	"namespace-controller",
	"garbage-collector-controller",
	"resourcequota-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"clusterrole-aggregation-controller",
	"cronjob-controller",
}

// ControllerManager is the kube-controller-manager that runs beside an
// APIServer, as in every real cluster. Each controller acts with a
// service-account identity of its own (--use-service-account-credentials),
// as kubeadm sets it up, so RBAC applies to controllers as it does in
// production.
type ControllerManager struct {
	// Port is its loopback HTTPS port (healthz, metrics).
	Port int
	// LogPath is the file it writes its log to.
	LogPath string

	args []string // all but --secure-port, which each start picks
	proc *process
}

func newControllerManager(binDir, dir, name string, s *APIServer, caPath, saKey string) (*ControllerManager, error) {
	path, err := requireBinary(binDir, "kube-controller-manager")
	if err != nil {
		return nil, err
	}
	cfg, err := s.ConfigFor(ControllerManagerUser)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	if err := WriteKubeconfig(kubeconfig, name, cfg); err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "controller-manager-pki")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return nil, err
	}
	m := &ControllerManager{LogPath: filepath.Join(dir, "kube-controller-manager.log")}
	m.args = []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--cert-dir=" + certDir,
		"--controllers=" + strings.Join(Controllers, ","),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + caPath,
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
	m.proc = &process{name: "kube-controller-manager " + name, path: path, logPath: m.LogPath}
	return m, nil
}

// start runs the controller manager (again) and waits until it is healthy.
// Its port is picked at each start, and picked again when another process
// took it between the pick and the bind (several clusters start at once).
func (m *ControllerManager) start(ctx context.Context) error {
	if m.proc.running() {
		return nil
	}
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return err
		}
		m.Port = port
		m.proc.args = append(append([]string(nil), m.args...), "--secure-port="+strconv.Itoa(port))
		if err := m.proc.start(); err != nil {
			return err
		}
		err = m.waitHealthy(ctx, 60*time.Second)
		if err == nil || attempt == 3 || m.proc.running() || !strings.Contains(m.LogTail(5), "address already in use") {
			return err
		}
	}
}

func (m *ControllerManager) stop() { m.proc.stop(15 * time.Second) }

// Running reports whether the process is up.
func (m *ControllerManager) Running() bool { return m.proc.running() }

// LogTail returns the last n lines of its log.
func (m *ControllerManager) LogTail(n int) string { return LogTail(m.LogPath, n) }

// waitHealthy polls /healthz (always allowed, served on a self-signed
// certificate) until it answers 200.
func (m *ControllerManager) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback, self-signed
	}
	defer client.CloseIdleConnections()
	url := "https://127.0.0.1:" + strconv.Itoa(m.Port) + "/healthz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.proc.done():
			return fmt.Errorf("%s exited before it was healthy (%v); log tail:\n%s", m.proc.name, m.proc.exitErr(), m.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy after %s; log tail:\n%s", m.proc.name, timeout, m.LogTail(40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
