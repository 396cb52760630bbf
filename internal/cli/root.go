// Package cli assembles the crproxy command line: one folder per verb, as
// kind does, and a thin main in cmd/crproxy.
package cli

import (
	"github.com/spf13/cobra"

	"github.com/crproxy/crproxy/internal/cli/config"
	"github.com/crproxy/crproxy/internal/cli/dev"
	"github.com/crproxy/crproxy/internal/cli/serve"
	"github.com/crproxy/crproxy/internal/cli/status"
	"github.com/crproxy/crproxy/internal/cli/version"
)

// NewCommand returns the root `crproxy` command with every verb.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crproxy",
		Short: "Proxy custom resources from a client cluster to a target cluster",
		Long: `crproxy serves chosen custom resources of a client Kubernetes cluster
(often a virtual cluster) from a target cluster: reads come from a local,
persisted mirror of the target; every write goes through to the target
under the client's identity, loft:vcluster:p-<project>:<name>.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(serve.NewCommand(), dev.NewCommand(), config.NewCommand(), status.NewCommand(), version.NewCommand())
	return cmd
}
