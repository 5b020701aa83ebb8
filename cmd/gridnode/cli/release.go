package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/build/release"
)

func init() { register(newReleaseCmd) }

func newReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Publish a release folder to an OCI registry, or fetch one",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "push DIR REF",
		Short: "Publish the files of DIR as one OCI artifact at REF (registry/repo:tag)",
		Long: `push publishes every file under DIR (made by make release) as one OCI
artifact, a layer per file, and prints its digest. Credentials come from the
Docker configuration (docker login). The same folder always gives the same
digest; pull REPO@DIGEST fetches exactly this release.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, err := release.Push(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "pull REF DIR",
		Short: "Fetch the release at REF (tag or @sha256:digest) into DIR, verifying every file",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, err := release.Pull(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	})
	return cmd
}
