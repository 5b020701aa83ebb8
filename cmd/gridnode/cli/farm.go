package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/spf13/cobra"
)

func newFarmCmd() *cobra.Command {
	var registrar, keyPath string
	cmd := &cobra.Command{
		Use:   "farm",
		Short: "Farmer workflow: key, account, farms, nodes",
		Long: `Farmer workflow against a registrar (the project's own or ThreeFold's).

--registrar takes a URL or a network name (dev, test, qa, main); the default is
` + farm.DefaultRegistrar + `. The farmer key lives in ` + farm.DefaultKeyPath() + `
unless --key names another file.`,
	}
	cmd.PersistentFlags().StringVar(&registrar, "registrar", farm.DefaultRegistrar, "registrar URL or network name (dev, test, qa, main)")
	cmd.PersistentFlags().StringVar(&keyPath, "key", farm.DefaultKeyPath(), "farmer key file")

	// withClient makes a RunE that calls f with a client of the farmer key
	// and a context bounded to 2 minutes.
	withClient := func(f func(ctx context.Context, cl *client.Client, c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			key, err := farm.LoadKey(keyPath)
			if err != nil {
				return err
			}
			cl, err := client.New(farm.ResolveRegistrar(registrar), key, client.Options{UserAgent: "gridnode-farm"})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context(), 2*time.Minute)
			defer cancel()
			return f(ctx, cl, c, args)
		}
	}

	var force bool
	var fromMnemonic bool
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Make a farmer key and show its mnemonic once",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if fromMnemonic {
				fmt.Fprintln(c.OutOrStdout(), "Type the 24 words of the mnemonic, then Enter:")
				line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("reading the mnemonic: %w", err)
				}
				key, err := farm.KeyFromMnemonic(line)
				if err != nil {
					return err
				}
				if err := farm.SaveKey(keyPath, key, force); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "farmer key restored to %s\npublic key: %s\n", keyPath, api.PublicKey(key.Public().(ed25519.PublicKey)))
				return nil
			}
			key, words, err := farm.NewKey(nil)
			if err != nil {
				return err
			}
			if err := farm.SaveKey(keyPath, key, force); err != nil {
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "farmer key saved to %s (mode 0600)\n", keyPath)
			fmt.Fprintf(w, "public key: %s\n\n", api.PublicKey(key.Public().(ed25519.PublicKey)))
			fmt.Fprintln(w, "Mnemonic — write these 24 words down and keep them offline. They are shown")
			fmt.Fprintln(w, "only now; with them `gridnode farm keygen --from-mnemonic` makes the key again:")
			fmt.Fprintf(w, "\n  %s\n\n", words)
			return nil
		},
	}
	keygen.Flags().BoolVar(&force, "force", false, "replace an existing key file")
	keygen.Flags().BoolVar(&fromMnemonic, "from-mnemonic", false, "restore the key from its mnemonic, read from standard input")

	account := &cobra.Command{
		Use:   "account",
		Short: "Make sure the farmer key has an account (twin) and print its id",
		Args:  cobra.NoArgs,
		RunE: withClient(func(ctx context.Context, cl *client.Client, c *cobra.Command, _ []string) error {
			a, err := cl.EnsureAccount(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "twin %d\npublic key: %s\nregistrar: %s\n", a.TwinID, a.PublicKey, cl.BaseURL())
			return nil
		}),
	}

	var name, stellar string
	var dedicated bool
	create := &cobra.Command{
		Use:   "create --name NAME --stellar ADDRESS",
		Short: "Create a farm owned by the farmer key",
		Args:  cobra.NoArgs,
		RunE: withClient(func(ctx context.Context, cl *client.Client, c *cobra.Command, _ []string) error {
			id, err := farm.CreateFarm(ctx, cl, name, stellar, dedicated)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "farm %d %q created (twin %d)\nboot nodes with gridnode.farm=%d gridnode.registrar=%s\n",
				id, name, cl.Twin(), id, strings.TrimSuffix(cl.BaseURL(), api.Prefix))
			return nil
		}),
	}
	create.Flags().StringVar(&name, "name", "", "farm name: letters and digits, at most 40")
	create.Flags().StringVar(&stellar, "stellar", "", "Stellar address the farm is paid to (56 characters, starts with G)")
	create.Flags().BoolVar(&dedicated, "dedicated", false, "rent the farm's nodes whole")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("stellar")

	var farmID uint64
	nodes := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of the farmer's farms (or of --farm ID)",
		Args:  cobra.NoArgs,
		RunE: withClient(func(ctx context.Context, cl *client.Client, c *cobra.Command, _ []string) error {
			ids := []uint64{farmID}
			if farmID == 0 {
				farms, err := farm.MyFarms(ctx, cl)
				if err != nil {
					return err
				}
				if len(farms) == 0 {
					return errors.New("this farmer key has no farm: create one with `gridnode farm create`, or name one with --farm ID")
				}
				ids = ids[:0]
				for _, f := range farms {
					ids = append(ids, f.FarmID)
				}
			}
			list, err := farm.Nodes(ctx, cl, ids...)
			if err != nil {
				return err
			}
			return farm.WriteNodes(c.OutOrStdout(), list, cl.Now())
		}),
	}
	nodes.Flags().Uint64Var(&farmID, "farm", 0, "farm id (default: every farm of the farmer key)")

	approve := &cobra.Command{
		Use:   "approve NODE_ID",
		Short: "Approve a node of one of the farmer's farms",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(ctx context.Context, cl *client.Client, c *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("node id %q: want a number", args[0])
			}
			if _, err := cl.EnsureAccount(ctx); err != nil {
				return err
			}
			if err := cl.ApproveNode(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "node %d approved\n", id)
			return nil
		}),
	}

	cmd.AddCommand(keygen, account, create, nodes, approve)
	return cmd
}
