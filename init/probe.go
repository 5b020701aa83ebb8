package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/gridnode/gridnode/init/coldplug"
	"github.com/gridnode/gridnode/init/config"
	"github.com/gridnode/gridnode/modules/fact"
)

// runProbe is the smallest module: it publishes the fact "probe" with the
// kernel modules loaded and the kernel release, then stays up. It shows the
// supervisor working before the real modules exist, and tests read it.
//
//	{"kernel": "6.1.0-56-amd64", "modules": ["virtio_blk", ...], "flavour": "node"}
func runProbe(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	mods, err := coldplug.ReadModules()
	if err != nil {
		log.Warn("cannot list kernel modules", "err", err)
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if err := fact.Write("probe", map[string]any{
		"kernel":  strings.TrimSpace(string(rel)),
		"modules": mods,
		"flavour": cfg.Flavour,
	}); err != nil {
		return err
	}
	log.Info("published", "modules", len(mods))
	<-ctx.Done()
	return nil
}
