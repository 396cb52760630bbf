// Package config is the `crproxy config` verb: `crproxy config validate
// FILE` checks a configuration the way `crproxy serve` does at start and
// prints each problem with its key.
package config

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	pkgconfig "github.com/crproxy/crproxy/pkg/config"
)

// NewCommand returns `crproxy config` with its `validate` verb.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		SilenceUsage: true,
		Use:          "config",
		Short:        "Work with crproxy configuration files",
		Args:         cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration and print each problem with its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := pkgconfig.Load(args[0])
			var invalid *pkgconfig.ValidationError
			if errors.As(err, &invalid) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d problem(s)\n", args[0], len(invalid.Errors))
				for _, fe := range invalid.Errors {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", fe.Error())
				}
				return fmt.Errorf("%s is not valid", args[0])
			}
			if err != nil {
				return err
			}
			gvs := cfg.GroupVersions()
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: client %s, %d group/version(s):\n", args[0], cfg.Client.Identity(), len(gvs))
			for _, gv := range gvs {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s -> target %s/%s (%s)\n", gv.GroupVersion, gv.Target.Project, gv.Target.Name, gv.Access)
			}
			return nil
		},
	})
	return cmd
}
