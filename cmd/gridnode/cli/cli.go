// Package cli is the gridnode command line. Each subcommand lives in a file of
// its own and hands its work to the package that does it; commands is the
// one list of them.
package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// commands are the subcommands, each made afresh for every Run.
var commands = []func() *cobra.Command{
	newBuildCmd,
	newRunCmd,
	newImageCmd,
	newNetbootCmd,
	newRegistrarCmd,
	newFarmCmd,
	newSimulateCmd,
	newReleaseCmd,
	newDeployCmd,
	newDeploymentsCmd,
	newLogsCmd,
	newUndeployCmd,
	newChannelCmd,
	newVersionCmd,
}

// Run runs the command line args and returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "gridnode",
		Short:         "Build, boot and serve gridnode images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range commands {
		root.AddCommand(c())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "gridnode: %v\n", err)
		return 1
	}
	return 0
}
