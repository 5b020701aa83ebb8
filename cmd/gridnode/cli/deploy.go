package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/workload/nodeclient"
	"github.com/spf13/cobra"
)

// nodeFlags are the flags every command against a node's API has.
type nodeFlags struct {
	node, key, registrar string
	twin                 uint64
}

func (f *nodeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.node, "node", "", "the node's API: http://HOST[:PORT] (default port "+nodeclient.DefaultPort+")")
	cmd.Flags().StringVar(&f.key, "key", farm.DefaultKeyPath(), "your key file (made by gridnode farm keygen)")
	cmd.Flags().Uint64Var(&f.twin, "twin", 0, "your twin id (default: looked up by your key at --registrar)")
	cmd.Flags().StringVar(&f.registrar, "registrar", farm.DefaultRegistrar, "registrar URL or network name (dev, test, qa, main), to find your twin id")
	cmd.MarkFlagRequired("node")
}

// client makes the node client, finding the twin of the key when --twin
// is not given.
func (f *nodeFlags) client(ctx context.Context) (*nodeclient.Client, error) {
	key, err := farm.LoadKey(f.key)
	if err != nil {
		return nil, err
	}
	twin := f.twin
	if twin == 0 {
		reg := farm.ResolveRegistrar(f.registrar)
		c, err := client.New(reg, key, client.Options{UserAgent: "gridnode-deploy"})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a, err := c.AccountByKey(ctx, api.PublicKey(key.Public().(ed25519.PublicKey)))
		if client.IsNotFound(err) {
			return nil, fmt.Errorf("your key %s has no twin at %s: run gridnode farm account --registrar %s, or pass --twin", f.key, reg, f.registrar)
		}
		if err != nil {
			return nil, fmt.Errorf("finding your twin at %s: %w (or pass --twin)", reg, err)
		}
		twin = a.TwinID
	}
	return nodeclient.New(f.node, key, twin)
}

// terminal says whether w is a terminal: progress is shown there, not in
// CI logs.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("CI") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newDeployCmd() *cobra.Command {
	var nf nodeFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deploy FILE --node URL",
		Short: "Deploy a deployment file onto a node and wait until it runs",
		Long: `Deploy the workloads of a deployment file (README.md, "Deployments") onto a
node: each image tag is pinned to its digest where this machine reaches the
registry (the node pins the others), the file is signed with your key and
sent to the node's API, and the command waits until every workload runs,
showing the pull's progress on a terminal. On failure it prints the node's
reason and exits non-zero. Deploying a name that runs replaces it as a new
generation; volumes are kept.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d, err := deployment.Load(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context(), timeout)
			defer cancel()
			nc, err := nf.client(ctx)
			if err != nil {
				return err
			}
			out, errw := c.OutOrStdout(), c.ErrOrStderr()
			nodeclient.Pin(ctx, &d, 10*time.Second, func(w, pinned string, err error) {
				if err != nil {
					fmt.Fprintf(errw, "%s: not pinned here (%v); the node pins it\n", w, err)
				} else {
					fmt.Fprintf(errw, "%s: %s\n", w, pinned)
				}
			})
			st, err := nc.Deploy(ctx, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(errw, "%s: generation %d accepted\n", st.Name, st.Generation)
			tty, last := terminal(errw), ""
			st, err = nc.Wait(ctx, d.Name, st.Generation, func(s deployment.Status) {
				line := nodeclient.Progress(s)
				switch {
				case tty:
					fmt.Fprintf(errw, "\r\x1b[K%s", line)
				case line != last && !strings.Contains(line, "MiB"):
					fmt.Fprintln(errw, line)
				}
				last = line
			})
			if tty {
				fmt.Fprintln(errw)
			}
			if err != nil {
				return err
			}
			return nodeclient.WriteTable(out, []deployment.Status{st})
		},
	}
	nf.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the deployment to run")
	return cmd
}

func newDeploymentsCmd() *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "deployments --node URL",
		Short: "List your deployments on a node (every one for the farm's owner)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), time.Minute)
			defer cancel()
			nc, err := nf.client(ctx)
			if err != nil {
				return err
			}
			l, err := nc.List(ctx)
			if err != nil {
				return err
			}
			return nodeclient.WriteTable(c.OutOrStdout(), l)
		},
	}
	nf.add(cmd)
	return cmd
}

func newLogsCmd() *cobra.Command {
	var nf nodeFlags
	var follow bool
	var tail int64
	cmd := &cobra.Command{
		Use:   "logs --node URL NAME/WORKLOAD [-f]",
		Short: "Print a workload's output (-f: and follow it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name, workload, ok := strings.Cut(args[0], "/")
			if !ok || name == "" || workload == "" {
				return fmt.Errorf("%q: want DEPLOYMENT/WORKLOAD, e.g. web/web", args[0])
			}
			nc, err := nf.client(c.Context())
			if err != nil {
				return err
			}
			rc, err := nc.Logs(c.Context(), name, workload, tail, follow)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(c.OutOrStdout(), rc)
			if c.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	nf.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the workload writes")
	cmd.Flags().Int64Var(&tail, "tail", 0, "print only the last BYTES of the log (0: all the node keeps)")
	return cmd
}

func newUndeployCmd() *cobra.Command {
	var nf nodeFlags
	var purge bool
	cmd := &cobra.Command{
		Use:   "undeploy --node URL NAME [--purge]",
		Short: "Stop and remove a deployment (--purge: and its volumes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 2*time.Minute)
			defer cancel()
			nc, err := nf.client(ctx)
			if err != nil {
				return err
			}
			st, err := nc.Undeploy(ctx, args[0], purge)
			if err != nil {
				return err
			}
			what := "its volumes kept"
			if purge {
				what = "its volumes removed"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: generation %d undeployed, %s\n", st.Name, st.Generation, what)
			return nil
		},
	}
	nf.add(cmd)
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the deployment's volumes")
	return cmd
}
