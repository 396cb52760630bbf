package status

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/crproxy/crproxy/pkg/config"
	"github.com/crproxy/crproxy/pkg/platform"
	"github.com/crproxy/crproxy/pkg/server"
)

// Options are the flags of `crproxy status`.
type Options struct {
	// ConfigFile is crproxy's configuration: its client kubeconfig is the
	// identity presented to crproxy.
	ConfigFile string
	// Server is crproxy's base URL.
	Server string
	// DataDir is crproxy's data folder (`serve --data-dir`), where its
	// self-signed serving certificate is.
	DataDir string
	// CertificateAuthority, when set, replaces the certificate in DataDir
	// (for a crproxy serving with --tls-cert-file).
	CertificateAuthority string
	// InsecureSkipTLSVerify skips verifying crproxy's certificate.
	InsecureSkipTLSVerify bool
	// Output is "table" or "json".
	Output string
	// Timeout bounds the request.
	Timeout time.Duration
}

// NewCommand returns `crproxy status`.
func NewCommand() *cobra.Command {
	o := &Options{Server: "https://127.0.0.1:9443", DataDir: "crproxy-data", Output: "table", Timeout: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Show a running crproxy's targets and mirrored resources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigFile == "" {
				return errors.New("--config is required: the configuration crproxy serves with (its client kubeconfig authenticates this command)")
			}
			if o.Output != "table" && o.Output != "json" {
				return fmt.Errorf("--output must be table or json, not %q", o.Output)
			}
			return Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "the configuration file crproxy serves with")
	fs.StringVar(&o.Server, "server", o.Server, "crproxy's address")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "crproxy's data folder; its certs/apiserver.crt verifies crproxy's certificate")
	fs.StringVar(&o.CertificateAuthority, "certificate-authority", o.CertificateAuthority, "a CA file to verify crproxy's certificate with, instead of the one in --data-dir")
	fs.BoolVar(&o.InsecureSkipTLSVerify, "insecure-skip-tls-verify", o.InsecureSkipTLSVerify, "do not verify crproxy's certificate")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "table or json")
	fs.DurationVar(&o.Timeout, "request-timeout", o.Timeout, "how long to wait for crproxy")
	return cmd
}

// Run fetches crproxy's /status and prints it to out.
func Run(ctx context.Context, o *Options, out io.Writer) error {
	data, err := fetch(ctx, o)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		var b bytes.Buffer
		if err := json.Indent(&b, data, "", "  "); err != nil {
			return fmt.Errorf("crproxy's /status is not JSON: %w", err)
		}
		b.WriteByte('\n')
		_, err := b.WriteTo(out)
		return err
	}
	var report server.StatusReport
	if err := json.Unmarshal(data, &report); err != nil {
		return fmt.Errorf("crproxy's /status: %w", err)
	}
	return printTables(out, report, time.Now())
}

// fetch GETs /status with the client cluster's credentials.
func fetch(ctx context.Context, o *Options) ([]byte, error) {
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	var rc *rest.Config
	if cfg.Client.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Client.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("the client cluster's credentials: %w", err)
	}
	// Keep the credentials, replace where to and whom to trust: crproxy's
	// certificate is its own, not the client cluster's.
	rc = rest.CopyConfig(rc)
	rc.Host = o.Server
	rc.TLSClientConfig = rest.TLSClientConfig{CertFile: rc.CertFile, KeyFile: rc.KeyFile, CertData: rc.CertData, KeyData: rc.KeyData}
	rc.Insecure = o.InsecureSkipTLSVerify
	if !o.InsecureSkipTLSVerify {
		rc.CAFile = o.CertificateAuthority
		if rc.CAFile == "" {
			rc.CAFile = filepath.Join(o.DataDir, "certs", "apiserver.crt")
		}
	}
	client, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.Server, "/")+"/status", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
			return nil, fmt.Errorf("%w (crproxy's certificate is checked against %s; see --data-dir, --certificate-authority and --insecure-skip-tls-verify)", err, rc.CAFile)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var status struct{ Message string }
		if json.Unmarshal(data, &status) == nil && status.Message != "" {
			data = []byte(status.Message)
		}
		return nil, fmt.Errorf("crproxy answered %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return data, nil
}

// printTables prints the targets, then the resources. Times are ages, as
// kubectl prints them; -o json has the exact times.
func printTables(out io.Writer, report server.StatusReport, now time.Time) error {
	age := func(t time.Time) string {
		if t.IsZero() {
			return "<never>"
		}
		return duration.HumanDuration(now.Sub(t))
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSTATE\tSINCE\tLAST-EVENT\tRECONNECTS\tLAST-ERROR")
	for _, t := range report.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", t.Target, t.State, age(t.Since), age(t.LastEvent), t.Reconnects, t.LastError)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RESOURCE\tTARGET\tOBJECTS\tRESOURCEVERSION\tSYNCED\tWATCHERS")
	for _, t := range report.Targets {
		for _, r := range t.Resources {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%t\t%d\n", r.Name(), t.Target, r.Objects, r.ResourceVersion, r.Synced, r.Watchers)
		}
		for _, gv := range t.Undiscovered {
			fmt.Fprintf(tw, "%s (not discovered yet)\t%s\t-\t-\tfalse\t-\n", gv, t.Target)
		}
	}
	if len(report.Platform) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "PLATFORM USE OF TARGET\tSTATE\tSINCE\tCHECKED\tREASON\tCHECK WITH")
		for _, d := range report.Platform {
			reason := d.Reason
			if d.LastError != "" {
				reason += " (" + d.LastError + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Target, d.State, age(d.Since), age(d.Checked), reason, platform.CheckCommand(d))
		}
	}
	return tw.Flush()
}
