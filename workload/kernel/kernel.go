// Package kernel names the kernel modules workloads need — one list, read
// by the image builder (the "workloads" driver group) and by the node,
// which loads them when the workloads module starts.
package kernel

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Modules are what containers and their network need from a Debian kernel
// that builds them as modules (the builder adds their dependencies).
var Modules = []string{
	"overlay", "loop", // root file systems: overlay over layers, a loop-mounted writable layer
	"veth", "bridge", "tun",
	"nf_tables", "nf_conntrack", "nf_nat", "nft_ct", "nft_nat", "nft_chain_nat", "nft_masq", "nft_fib_inet",
}

// Load loads Modules with the node program's own module loader
// (`/init modprobe`, which knows the image's modules.dep); a module built
// into the kernel or already loaded is no error.
func Load(ctx context.Context, initPath string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, initPath, append([]string{"modprobe"}, Modules...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loading the workload kernel modules (%s): %v: %s", strings.Join(Modules, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
