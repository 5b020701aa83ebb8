package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/build/release"
)

func newReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Make a release folder, publish it to an OCI registry, or fetch one",
	}
	cmd.AddCommand(newReleaseBuildCmd())
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

func newReleaseBuildCmd() *cobra.Command {
	var version, cache, src string
	var quiet, verbose bool
	c := &cobra.Command{
		Use:   "build SPEC DIR --version VERSION",
		Short: "Make a release folder: every boot format, the manifest, an SPDX SBOM and SHA256SUMS",
		Long: `build makes the release folder DIR (make release VERSION=x runs it for dist/):
every boot format of SPEC (kernel, uki, iso, usb, pxe) named for VERSION, the
build manifest, an SPDX 2.3 JSON SBOM (gridnode-VERSION.spdx.json: the Go
modules of the node program and the Debian packages of kernel, firmware and
boot loaders, with versions and checksums) and SHA256SUMS over all of it.
DIR must be missing or empty.

SOURCE_DATE_EPOCH sets every timestamp; without it the time of the source
tree's last commit is used, so two releases of one checkout are identical.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return fmt.Errorf("release build: --version is required (make release VERSION=x)")
			}
			s, src, epoch, progress, err := buildInputs(cmd, args[0], src, verbose, quiet)
			if err != nil {
				return err
			}
			r, err := release.Build(cmd.Context(), release.BuildOptions{
				Spec: s, Version: version, Out: args[1], Cache: cache, Src: src, Epoch: epoch,
				Progress: progress, Warn: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			for _, f := range r.Files {
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s\n", args[1], f)
			}
			return nil
		},
	}
	c.Flags().StringVar(&version, "version", "", "release version (file names, manifest, SBOM)")
	c.Flags().StringVar(&cache, "cache", ".cache", "cache folder for packages, kernels and indexes")
	c.Flags().StringVar(&src, "src", "", "gridnode source tree to compile the node program from (default: found from the current folder)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "progress lines even when not on a terminal")
	return c
}
