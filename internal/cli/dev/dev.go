// Package dev is the `crproxy dev` verb: a local demo environment of the
// Resource Proxy documentation's multi-client walkthrough. It starts an
// etcd, a target kube-apiserver, two client kube-apiservers (team-a and
// team-b) and the platform's management cluster, installs the
// documentation's CRD and target RBAC in the target and its multi-client
// platform RBAC in the management cluster, runs one crproxy per client
// (owned mode, checking the platform's permission), and prints the
// kubeconfigs and the walkthrough's commands, ready to paste, starting with
// the documentation's `kubectl auth can-i` check. Ctrl-C stops everything and
// removes the state folder unless --keep is given.
//
// `make demo` builds the binaries it needs (bin/etcd, bin/kube-apiserver,
// bin/kubectl, bin/crproxy) and runs it.
package dev

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/crproxy/crproxy/internal/crproxytest"
	"github.com/crproxy/crproxy/internal/localcluster"
	"github.com/crproxy/crproxy/pkg/config"
)

// clients are the demo's client clusters, as in the documentation.
var clients = []string{"team-a", "team-b"}

// Options are the settings of `crproxy dev`.
type Options struct {
	// Dir holds all state: the clusters' data, certificates and logs,
	// kubeconfigs and crproxy's data.
	Dir string
	// Keep leaves Dir in place after the environment stops.
	Keep bool
	// BinDir holds etcd, kube-apiserver and kubectl; localcluster.FindBinDir
	// when empty.
	BinDir string
	// Out receives the progress and the walkthrough.
	Out io.Writer
	// Ready, when set, is called with the walkthrough script once
	// everything serves (tests run it).
	Ready func(walkthrough string)
}

// NewCommand returns `crproxy dev`.
func NewCommand() *cobra.Command {
	o := &Options{Dir: ".crproxy-dev"}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local demo: a target and two client clusters (team-a, team-b) with one crproxy each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Run(ctx, o)
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", o.Dir, "folder for all state")
	cmd.Flags().BoolVar(&o.Keep, "keep", o.Keep, "keep the state folder after stopping")
	cmd.Flags().StringVar(&o.BinDir, "bin-dir", o.BinDir, "folder with etcd, kube-apiserver and kubectl (default: the module's bin/, or beside crproxy)")
	return cmd
}

// Run starts the environment, prints the walkthrough and serves until ctx
// ends; then it stops every process it started.
func Run(ctx context.Context, o *Options) (err error) {
	start := time.Now()
	step := func(n int, format string, args ...any) {
		fmt.Fprintf(o.Out, "[%d/5] %s\n", n, fmt.Sprintf(format, args...))
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	binDir := o.BinDir
	if binDir == "" {
		if binDir, err = localcluster.FindBinDir(); err != nil {
			return fmt.Errorf("%w (run `make demo`, which builds them)", err)
		}
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		fmt.Fprintf(o.Out, "removing the previous state in %s\n", dir)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	defer func() {
		if !o.Keep {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintf(o.Out, "state kept in %s\n", dir)
		}
	}()

	// The Kubernetes libraries log through klog; into a file, not over the
	// walkthrough.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	klogCfg := zap.NewProductionConfig()
	klogCfg.OutputPaths = []string{filepath.Join(dir, "kubernetes-libraries.log")}
	klogCfg.ErrorOutputPaths = klogCfg.OutputPaths
	if klogLog, err := klogCfg.Build(); err == nil {
		klog.SetLogger(zapr.NewLogger(klogLog))
	}

	step(1, "starting etcd")
	env, err := localcluster.Start(ctx, localcluster.Options{Dir: dir, BinDir: binDir})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(o.Out, "stopping the clusters")
		env.Stop()
	}()

	step(2, "starting kube-apiservers target, %s and platform (about 10 s)", strings.Join(clients, ", "))
	servers := map[string]*localcluster.APIServer{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range append([]string{"target", "platform"}, clients...) {
		g.Go(func() error {
			s, err := env.StartAPIServer(gctx, name, localcluster.APIServerOptions{})
			if err != nil {
				return fmt.Errorf("starting %s: %w", name, err)
			}
			mu.Lock()
			servers[name] = s
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	target := servers["target"]

	mgmt := servers["platform"]
	step(3, "installing the MyResource CRD and the documentation's target RBAC in the target, its platform RBAC in the management cluster")
	if err := crproxytest.InstallCRD(ctx, target, "myresource-crd.yaml"); err != nil {
		return err
	}
	if err := crproxytest.Apply(ctx, target, "multi-client-target-rbac.yaml"); err != nil {
		return err
	}
	if err := crproxytest.InstallCRD(ctx, mgmt, "virtualclusterinstance-crd.yaml"); err != nil {
		return err
	}
	if out, err := mgmt.Kubectl(ctx, "create", "namespace", "p-default"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	if err := crproxytest.Apply(ctx, mgmt, "multi-client-platform-rbac.yaml"); err != nil {
		return err
	}

	step(4, "starting crproxy for %s (owned mode)", strings.Join(clients, " and "))
	for _, name := range clients {
		p, err := startProxy(ctx, dir, name, servers[name], target, mgmt)
		if err != nil {
			return err
		}
		defer func() {
			if err := p.Stop(); err != nil {
				fmt.Fprintf(o.Out, "crproxy for %s ended with %v\n", name, err)
			}
		}()
	}
	step(5, "the client clusters serve example.com/v1")

	kubectl := filepath.Join(binDir, "kubectl")
	script := walkthrough(kubectl, servers["team-a"].KubeconfigPath, servers["team-b"].KubeconfigPath, target.KubeconfigPath, mgmt.KubeconfigPath)
	fmt.Fprintf(o.Out, "\nReady in %s. Logs and state: %s\n\n", time.Since(start).Round(100*time.Millisecond), dir)
	fmt.Fprintf(o.Out, "Paste these in another terminal (the documentation's multi-client walkthrough):\n\n%s\nCtrl-C stops everything.\n", script)
	if o.Ready != nil {
		o.Ready(script)
	}
	<-ctx.Done()
	fmt.Fprintln(o.Out, "\nstopping crproxy")
	return nil
}

// startProxy runs the crproxy of one client, in this process, with the
// documentation's multi-client configuration (the target is named
// orchestrator), its own data folder, log, port and Service name, and waits
// until the client serves example.com/v1.
func startProxy(ctx context.Context, dir, name string, client, target, mgmt *localcluster.APIServer) (*crproxytest.Proxy, error) {
	home := filepath.Join(dir, "crproxy-"+name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	cfg := crproxytest.Config(name, client, target)
	cfg.Targets[0].Name = "orchestrator"
	cfg.Platform = &config.Platform{Kubeconfig: mgmt.KubeconfigPath}
	cfg.Experimental.Proxy.CustomResources[crproxytest.MyResourcesKey] = config.CustomResourceProxy{
		Enabled:              true,
		TargetVirtualCluster: config.VirtualClusterRef{Name: "orchestrator"},
		AccessResources:      config.AccessOwned,
	}
	p, err := crproxytest.New(crproxytest.Options{Client: client, Config: cfg, Dir: home, ServiceName: "crproxy-" + name})
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("crproxy for %s: %w", name, err)
	}
	return p, nil
}

// walkthrough is the documentation's multi-client walkthrough with this
// environment's paths, one command per paragraph.
func walkthrough(kubectl, teamA, teamB, target, platform string) string {
	return fmt.Sprintf(`export KUBECTL=%s
export TEAM_A=%s
export TEAM_B=%s
export TARGET=%s
export PLATFORM=%s

# The platform lets team-a and team-b use the orchestrator (the documentation's check)
$KUBECTL --kubeconfig $PLATFORM auth can-i use virtualclusterinstances/orchestrator --as=loft:vcluster:p-default:team-a -n p-default
$KUBECTL --kubeconfig $PLATFORM auth can-i use virtualclusterinstances/orchestrator --as=loft:vcluster:p-default:team-b -n p-default

# Team A creates a resource
$KUBECTL --kubeconfig $TEAM_A apply -f - <<EOF
apiVersion: example.com/v1
kind: MyResource
metadata:
  name: team-a-resource
spec:
  name: "Team A Data Resource"
EOF

# Team B creates a resource
$KUBECTL --kubeconfig $TEAM_B apply -f - <<EOF
apiVersion: example.com/v1
kind: MyResource
metadata:
  name: team-b-resource
spec:
  name: "Team B ML Resource"
EOF

# Team A only sees their resource
$KUBECTL --kubeconfig $TEAM_A get myresources

# Team B only sees their resource
$KUBECTL --kubeconfig $TEAM_B get myresources

# The target (orchestrator) sees both
$KUBECTL --kubeconfig $TARGET get myresources
`, kubectl, teamA, teamB, target, platform)
}
