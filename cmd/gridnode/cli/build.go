package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/spf13/cobra"
)

func newBuildCmd() *cobra.Command {
	var (
		out, cache, src, formats, compression string
		quiet, verbose                        bool
	)
	c := &cobra.Command{
		Use:   "build SPEC",
		Short: "Build boot media from an image spec (images/node.yaml)",
		Long: `Build reads an image spec and writes the kernel, the initramfs, the default
command line and a manifest into the output folder, plus any other formats
asked for with --format (kernel, uki, iso, usb, pxe).

SOURCE_DATE_EPOCH sets every timestamp written; without it the time of the
source tree's last commit is used, so two builds of one checkout are identical.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, src, epoch, progress, err := buildInputs(cmd, args[0], src, verbose, quiet)
			if err != nil {
				return err
			}
			res, err := build.Build(cmd.Context(), build.Options{
				Spec: s, Out: out, Cache: cache, Src: src, Epoch: epoch,
				Formats: splitComma(formats), Compression: compression,
				Progress: progress, Warn: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			for _, o := range res.Manifest.Outputs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s/%s\n", o.SHA256, out, o.Name)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "out", "output folder")
	c.Flags().StringVar(&cache, "cache", ".cache", "cache folder for packages, kernels and indexes")
	c.Flags().StringVar(&src, "src", "", "gridnode source tree to compile the node program from (default: found from the current folder)")
	c.Flags().StringVar(&formats, "format", "kernel", "formats to write, comma-separated: "+strings.Join(build.FormatNames(), ", "))
	c.Flags().StringVar(&compression, "compression", "zstd", "initramfs compression: zstd or gzip")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "progress lines even when not on a terminal")
	return c
}

func splitComma(s string) []string {
	var l []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l = append(l, p)
		}
	}
	return l
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// buildInputs is what gridnode build and gridnode release build both start
// from: the spec, the source tree (found from the working folder unless
// given), SOURCE_DATE_EPOCH, and where progress goes (a terminal, unless
// quiet or under CI; always with verbose).
func buildInputs(cmd *cobra.Command, specPath, src string, verbose, quiet bool) (*spec.Spec, string, time.Time, io.Writer, error) {
	s, err := spec.Load(specPath)
	if err != nil {
		return nil, "", time.Time{}, nil, err
	}
	if src == "" {
		if src, err = build.FindSource("."); err != nil {
			return nil, "", time.Time{}, nil, err
		}
	}
	epoch, err := build.SourceDateEpoch(src)
	if err != nil {
		return nil, "", time.Time{}, nil, err
	}
	var progress io.Writer
	if verbose || (!quiet && isTerminal(cmd.ErrOrStderr()) && os.Getenv("CI") == "") {
		progress = cmd.ErrOrStderr()
	}
	return s, src, epoch, progress, nil
}
