package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// newVersionCmd prints the module version and VCS revision Go recorded in
// the binary: what a bug report needs.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the gridnode version",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			v, rev := "(devel)", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				v = bi.Main.Version
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			fmt.Fprintf(c.OutOrStdout(), "gridnode %s%s\n", v, rev)
		},
	}
}
