package cli

import (
	"fmt"

	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/spf13/cobra"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Read or change gridnode.conf inside an ISO or USB image",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "set IMAGE key=value...",
		Short: "Change gridnode.conf inside an ISO or USB image, in place",
		Long: `Change the farmer-editable configuration inside a gridnode ISO or USB image
without rebuilding it: every copy of gridnode.conf (ISO 9660 root, FAT
partition) is rewritten in its reserved space and nothing else changes.
Keys are those of the kernel command line without "gridnode.", e.g.

  gridnode image set gridnode-1.0.iso farm=42 registrar=main`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := mediaconf.Set(args[0], args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: gridnode.conf is now:\n%s", args[0], text)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show IMAGE",
		Short: "Print gridnode.conf of an ISO or USB image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := mediaconf.Read(args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(text)
			return err
		},
	})
	return cmd
}
