package cli

import (
	"crypto/ed25519"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/upgrade/doc"
)

func newReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Make a release folder, publish it to an OCI registry, or fetch one",
	}
	cmd.AddCommand(newReleaseBuildCmd(), newReleaseKeygenCmd(), newReleasePushCmd(), newReleasePullCmd(), newReleaseVerifyCmd())
	return cmd
}

func newReleasePushCmd() *cobra.Command {
	var unsigned bool
	c := &cobra.Command{
		Use:   "push DIR REF",
		Short: "Publish the files of DIR as one OCI artifact at REF (registry/repo:tag)",
		Long: `push publishes every file under DIR (made by make release) as one OCI
artifact, a layer per file, and prints its digest. Credentials come from the
Docker configuration (docker login). The same folder always gives the same
digest; pull REPO@DIGEST fetches exactly this release.

The folder must hold a signed release.json (make release RELEASE_KEY=FILE);
--unsigned publishes a release without one, which nodes refuse.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := release.CheckSigned(args[0]); err != nil {
				if !unsigned {
					return fmt.Errorf("release push: %w; --unsigned publishes it anyway", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "release push: %v; publishing it unsigned as asked\n", err)
			}
			digest, err := release.Push(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	}
	c.Flags().BoolVar(&unsigned, "unsigned", false, "publish a release without a signed release.json")
	return c
}

func newReleasePullCmd() *cobra.Command {
	var keys []string
	c := &cobra.Command{
		Use:   "pull REF DIR",
		Short: "Fetch the release at REF (tag or @sha256:digest) into DIR, verifying every file",
		Long: `pull fetches a release and checks every file against the artifact's
manifest. With --key (repeatable; the ed25519:… line release keygen printed,
as in an image spec's release_keys) its release.json must be signed by one
of the keys and name exactly the artifact's files, checked before anything
else is downloaded.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := doc.ParsePublicKeys(keys)
			if err != nil {
				return fmt.Errorf("release pull: %w", err)
			}
			digest, err := release.Pull(cmd.Context(), args[0], args[1], pub)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	}
	c.Flags().StringArrayVar(&keys, "key", nil, "release public key (ed25519:BASE64) the release must be signed by")
	return c
}

func newReleaseVerifyCmd() *cobra.Command {
	var keys []string
	c := &cobra.Command{
		Use:   "verify DIR --key KEY",
		Short: "Check a release folder against its signed release.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := doc.ParsePublicKeys(keys)
			if err != nil {
				return fmt.Errorf("release verify: %w", err)
			}
			if len(pub) == 0 {
				return fmt.Errorf("release verify: give the release's public key with --key (ed25519:…)")
			}
			r, err := release.Verify(args[0], pub)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "release %s: %d files, signed\n", r.Version, len(r.Files))
			return nil
		},
	}
	c.Flags().StringArrayVar(&keys, "key", nil, "release public key (ed25519:BASE64), repeatable")
	return c
}

func newReleaseKeygenCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen [-o FILE]",
		Short: "Make a release signing key: the private key in FILE (0600), the public key printed",
		Long: `keygen writes a new ed25519 release key to FILE (default release.key; an
existing file is never overwritten) with mode 0600, and prints its public
half as one line: paste it into the image spec's release_keys so the image's
nodes accept releases and channel documents signed with it. Keep FILE off
the build machines that do not sign, and back it up: a lost key means
images that accept no further upgrade.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := doc.GenerateKey()
			if err != nil {
				return err
			}
			b, err := doc.MarshalPrivateKey(k)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("release keygen: %w (an existing key is never overwritten)", err)
			}
			if _, err := f.Write(b); err != nil {
				f.Close()
				return fmt.Errorf("release keygen: writing %s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("release keygen: writing %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "release key written to %s (keep it secret); its public key, for release_keys in the image spec:\n", out)
			fmt.Fprintln(cmd.OutOrStdout(), doc.PublicKey(k.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "release.key", "file for the private key")
	return c
}

func newReleaseBuildCmd() *cobra.Command {
	var version, cache, src, keyFile string
	var quiet, verbose bool
	c := &cobra.Command{
		Use:   "build SPEC DIR --version VERSION",
		Short: "Make a release folder: every boot format, the manifest, an SPDX SBOM and SHA256SUMS",
		Long: `build makes the release folder DIR (make release VERSION=x runs it for dist/):
every boot format of SPEC (kernel, uki, iso, usb, pxe) named for VERSION, the
build manifest, an SPDX 2.3 JSON SBOM (gridnode-VERSION.spdx.json: the Go
modules of the node program and the Debian packages of kernel, firmware and
boot loaders, with versions and checksums), SHA256SUMS over all of it, and
release.json: the release document naming every file with its sha256 and
size, signed with --key.
DIR must be missing or empty.

SOURCE_DATE_EPOCH sets every timestamp; without it the time of the source
tree's last commit is used, so two releases of one checkout are identical.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return fmt.Errorf("release build: --version is required (make release VERSION=x)")
			}
			var key ed25519.PrivateKey
			if keyFile != "" {
				var err error
				if key, err = doc.LoadPrivateKey(keyFile); err != nil {
					return fmt.Errorf("release build: %w", err)
				}
			}
			s, src, epoch, progress, err := buildInputs(cmd, args[0], src, verbose, quiet)
			if err != nil {
				return err
			}
			r, err := release.Build(cmd.Context(), release.BuildOptions{
				Spec: s, Version: version, Out: args[1], Cache: cache, Src: src, Epoch: epoch, Key: key,
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
	c.Flags().StringVar(&keyFile, "key", "", "release key file (gridnode release keygen) to sign release.json with; without it the release is unsigned")
	c.Flags().StringVar(&cache, "cache", ".cache", "cache folder for packages, kernels and indexes")
	c.Flags().StringVar(&src, "src", "", "gridnode source tree to compile the node program from (default: found from the current folder)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "progress lines even when not on a terminal")
	return c
}
