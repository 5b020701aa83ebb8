package upgrade

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
	"github.com/gridnode/gridnode/upgrade/medium"
)

// install makes the release this node runs, which passed its trial, the
// boot medium's default where the medium can take it, and says in words
// what became of the medium. It never fails the trial: a medium that
// cannot take the release keeps booting the one it booted, which is tested.
func (m *module) install() string {
	until := fmt.Sprintf("%s runs until the next cold boot", m.running)
	switch m.cfg.Boot {
	case "pxe":
		return until + ", which boots what the netboot server serves (netbooted: no medium to write)"
	case "usb", "iso":
	default:
		return until + " (booted without a boot medium: nothing to write)"
	}
	var bm fact.BootMedium
	if err := fact.Read(fact.NameBootMedium, &bm); err != nil {
		return until + " (the boot medium was not found at boot: nothing written)"
	}
	f, err := medium.OpenFile("/dev/" + bm.Disk)
	if err != nil {
		return fmt.Sprintf("%s: %v", until, err)
	}
	defer f.Close()
	med, err := medium.Open(f)
	if err != nil {
		return fmt.Sprintf("%s: /dev/%s: %v", until, bm.Disk, err)
	}
	if def := med.Default(); def.Version == m.running {
		return fmt.Sprintf("%s is already the default of /dev/%s (slot %s)", m.running, bm.Disk, def.Name)
	}
	r, err := m.pending()
	if err != nil {
		return fmt.Sprintf("%s: nothing written: %v", until, err)
	}
	uki, err := os.Open(r.ukiPath())
	if err != nil {
		return fmt.Sprintf("%s: nothing written: %v", until, err)
	}
	defer uki.Close()
	slots, err := medium.Install(f, uki, r.uki, m.running)
	if err != nil {
		if errors.Is(err, medium.ErrReadOnly) || errors.Is(err, medium.ErrOneSlot) || errors.Is(err, medium.ErrNoSlots) {
			return fmt.Sprintf("%s: %v", until, err)
		}
		return fmt.Sprintf("%s: writing /dev/%s failed, its default is untouched: %v", until, bm.Disk, err)
	}
	msg := fmt.Sprintf("%s written to /dev/%s as the default of both boot paths", m.running, bm.Disk)
	for _, s := range slots {
		if s.Version != m.running {
			msg += fmt.Sprintf("; slot %s keeps %s", s.Name, s.Version)
		}
	}
	return msg
}

// pending is the release this trial came with, from the cache disk: its
// document verified again with this image's keys.
func (m *module) pending() (*pulled, error) {
	dir := m.releaseDir()
	b, err := os.ReadFile(filepath.Join(dir, doc.ReleaseName))
	if err != nil {
		return nil, fmt.Errorf("the release document of the trial: %w", err)
	}
	rel, err := doc.OpenRelease(b, m.keys)
	if len(m.keys) == 0 {
		err = errors.New("this image has no release keys to verify it with")
	}
	if err != nil {
		return nil, err
	}
	f, ok := rel.File(layout.UKIName(m.running))
	if !ok || rel.Version != m.running {
		return nil, fmt.Errorf("the release document on the cache disk is for %s, not %s", rel.Version, m.running)
	}
	return &pulled{rel: rel, uki: f, dir: dir}, nil
}
