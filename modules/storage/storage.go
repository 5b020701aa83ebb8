// Package storage picks the node's cache disk, prepares it on first boot, and
// mounts it at /var/cache. It publishes the fact "storage"
// (/run/gridnode/storage.json):
//
//	cache  {"disk","partition","mount","label","fresh"} or null when the node
//	       has no cache disk (it then runs with nothing persisted); fresh is
//	       true when this boot created the file system
//	disks  every disk of the hardware fact: {"name","serial","used","reason"},
//	       used when the node owns it, and why or why not in words
//	error  what went wrong preparing or mounting a cache, "" when nothing did
//
// Later boots find the cache by its ext4 label "gridnode-cache" on any
// partition of a capacity disk. On first boot the module takes the first
// empty SSD, else the first empty HDD: a GPT with one partition and an ext4
// file system, written with go-diskfs. A disk that holds a partition table,
// a file system or any non-zero byte in its first MiB is never touched,
// unless gridnode.wipe lists its serial (or its name when it has no serial),
// or says "all"; empty disks are still preferred over wipable ones.
//
// With no usable disk the fact is published all the same (the node must
// reach ready) and the module looks again every 30 s, for a disk plugged in
// later or a hardware fact that changed.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Name is the module's and its fact's name.
const Name = fact.NameStorage

// Label is the ext4 label of the cache file system; MountPoint is where it
// is mounted.
const (
	Label      = "gridnode-cache"
	MountPoint = "/var/cache"
)

// Interval is how often the module looks for a cache disk while it has none.
var Interval = 30 * time.Second

// Run waits for the hardware fact, finds or makes the cache, publishes, and
// keeps looking while there is no cache.
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	var hw fact.Hardware
	if err := fact.Wait(ctx, fact.NameHardware, &hw); err != nil {
		return err
	}
	n := &node{
		cfg:      cfg,
		log:      log,
		devDir:   "/dev",
		sysDir:   "/sys",
		mountDir: MountPoint,
		mount:    mountCache,
		partDev:  waitPartition,
	}
	// Disks show up a moment after their driver loads (a SCSI scan is
	// asynchronous), and the hardware fact follows them at its own pace.
	// A new cache is made only once the kernel's disk list has not changed
	// for a few seconds and the hardware fact lists every disk in it, so
	// that an SSD a second late is not passed over for an HDD. The first
	// fact waits up to settle for a cache to show up, so that a node does
	// not start with an ephemeral key because its disk was slow.
	//
	// The quiet counts from PID 1's last driver load at the latest (see
	// quietSince). Disks behind AHCI and virtio are there when their
	// driver's load returns (the kernel finishes a module's asynchronous
	// probing first); NVMe namespaces and SCSI and USB scans come after,
	// within about a second of their host (usb-storage waits 1 s): 3 s
	// covers that, and any change starts the count again.
	const (
		quiet  = 3 * time.Second
		settle = 20 * time.Second
		poll   = time.Second
	)
	start := time.Now()
	var last *fact.Storage
	seen, seenAt := "", time.Now()
	first := true
	for {
		if err := fact.Read(fact.NameHardware, &hw); err != nil {
			log.Warn("reading the hardware fact", "err", err)
		}
		if disks := kernelDisks(n.sysDir); disks != seen {
			seen, seenAt = disks, time.Now()
			if first {
				// The list the module first sees has not changed since
				// PID 1 last loaded a driver, at the latest: count the
				// quiet from then, not from this module's start.
				var cp fact.Coldplug
				if fact.Read(fact.NameColdplug, &cp) == nil {
					seenAt = quietSince(seenAt, fact.SinceBoot(), cp.At)
				}
			}
		}
		first = false
		n.mayCreate = time.Since(seenAt) >= quiet && listsAll(hw, seen)
		f := n.scan(hw)
		early := last == nil && f.Cache == nil && time.Since(start) < settle
		if !early && (last == nil || !reflect.DeepEqual(f, *last)) {
			if err := fact.Write(Name, f); err != nil {
				return fmt.Errorf("storage: publishing the fact: %w", err)
			}
			n.report(f)
			last = &f
		}
		wait := Interval
		if early || (f.Cache == nil && !n.mayCreate) {
			wait = poll
			if left := quiet - time.Since(seenAt); f.Cache == nil && seen != "" && left > 0 && left < wait {
				wait = left // make the cache the moment the list has been quiet
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// quietSince is when a disk list first seen at now (since boot: uptime)
// last changed at the latest, given that the drivers last changed at
// driversAt seconds since boot (0: unknown).
func quietSince(now time.Time, uptime time.Duration, driversAt float64) time.Time {
	at := time.Duration(driversAt * float64(time.Second))
	if driversAt <= 0 || at > uptime {
		return now
	}
	return now.Add(at - uptime)
}

// kernelDisks lists the kernel's block devices that have a size, the ones
// the hardware fact must list before a cache is made.
func kernelDisks(sysDir string) string {
	var l []string
	ents, _ := os.ReadDir(filepath.Join(sysDir, "block"))
	for _, e := range ents {
		if sz := strings.TrimSpace(readFile(filepath.Join(sysDir, "block", e.Name(), "size"))); sz != "" && sz != "0" {
			l = append(l, e.Name())
		}
	}
	return strings.Join(l, " ")
}

// listsAll says whether the hardware fact lists every disk named in disks.
func listsAll(hw fact.Hardware, disks string) bool {
	have := map[string]bool{}
	for _, d := range hw.Disks {
		have[d.Name] = true
	}
	for _, d := range strings.Fields(disks) {
		if !have[d] {
			return false
		}
	}
	return true
}

// node is the module's state and its ways to the system (so tests can run
// the selection on image files).
type node struct {
	cfg    config.Node
	log    *slog.Logger
	devDir string // where disks' device nodes are
	sysDir string // sysfs, for partitions
	// mountDir is where the cache is mounted: MountPoint on a node.
	mountDir string
	// mount mounts the ext4 file system on dev at dir.
	mount func(dev, dir string) error
	// partDev returns the device of the disk's first partition once the
	// kernel shows it.
	partDev func(n *node, disk string) (string, error)

	// mayCreate allows making a new cache: the disk list has settled.
	mayCreate bool

	cache *fact.Cache // once mounted, for the rest of the boot
}

func (n *node) report(f fact.Storage) {
	if f.Cache != nil {
		what := "found"
		if f.Cache.Fresh {
			what = "created"
		}
		n.log.Info("cache "+what, "disk", f.Cache.Disk, "partition", f.Cache.Partition, "mount", f.Cache.Mount)
	}
	for _, d := range f.Disks {
		n.log.Info("disk", "name", d.Name, "serial", d.Serial, "used", d.Used, "reason", d.Reason)
	}
	if f.Cache == nil {
		n.log.Warn(noCacheMessage(f))
	}
	if f.Error != "" {
		n.log.Error(f.Error)
	}
}

// noCacheMessage says in one line why there is no cache and what to do.
func noCacheMessage(f fact.Storage) string {
	var why []string
	for _, d := range f.Disks {
		if strings.HasPrefix(d.Reason, "holds ") {
			holds, _, _ := strings.Cut(strings.TrimPrefix(d.Reason, "holds "), ";")
			s := d.Name + " has " + holds
			if d.Serial != "" {
				s += " (serial " + d.Serial + ")"
			}
			why = append(why, s+", use gridnode.wipe="+wipeKey(fact.Disk{Name: d.Name, Serial: d.Serial})+" to allow wiping it")
		}
	}
	if len(why) == 0 {
		return "no empty disk for the cache: the node has no usable disk; nothing is kept across reboots (the node key included)"
	}
	return "no empty disk for the cache: " + strings.Join(why, "; ")
}

// wipeKey is what gridnode.wipe must say to allow wiping d.
func wipeKey(d fact.Disk) string {
	if d.Serial != "" {
		return d.Serial
	}
	return d.Name
}

// candidate is a capacity disk and what it holds.
type candidate struct {
	disk    fact.Disk
	holds   string // "" when empty
	wipable bool
}

// scan works out the cache for the disks of hw and what each disk is for.
func (n *node) scan(hw fact.Hardware) fact.Storage {
	f := fact.Storage{Disks: []fact.DiskState{}}
	var cands []*candidate
	states := map[string]*fact.DiskState{}
	for _, d := range hw.Disks {
		f.Disks = append(f.Disks, fact.DiskState{Name: d.Name, Serial: d.Serial})
	}
	for i, d := range hw.Disks {
		st := &f.Disks[i]
		states[d.Name] = st
		if !d.Capacity {
			st.Reason = "not a capacity disk: " + d.Reason
			continue
		}
		cands = append(cands, &candidate{disk: d})
	}

	if n.cache == nil {
		for _, c := range cands {
			if part := n.findLabel(c.disk.Name); part != "" {
				if err := n.mount(filepath.Join(n.devDir, part), n.mountDir); err != nil {
					f.Error = fmt.Sprintf("mounting the cache %s (label %s) at %s: %v", part, Label, n.mountDir, err)
					break
				}
				n.cache = &fact.Cache{Disk: c.disk.Name, Partition: part, Mount: n.mountDir, Label: Label}
				break
			}
		}
	}
	if n.cache == nil && f.Error == "" {
		for _, c := range cands {
			c.holds, c.wipable = n.inspect(c.disk)
		}
		if c := pick(cands); c != nil && n.mayCreate {
			if err := n.create(c); err != nil {
				f.Error = err.Error()
			}
		}
	}
	f.Cache = n.cache
	if n.cache != nil {
		// Say what the other disks hold, not only that they are not
		// needed: a farmer whose disk was passed over wants to know why.
		for _, c := range cands {
			if c.disk.Name != n.cache.Disk && c.holds == "" {
				c.holds, c.wipable = n.inspect(c.disk)
			}
		}
	}
	for _, c := range cands {
		st := states[c.disk.Name]
		switch {
		case n.cache != nil && c.disk.Name == n.cache.Disk:
			st.Used, st.Reason = true, "cache: "+n.cache.Partition+" labelled "+Label+", mounted at "+n.cache.Mount
		case n.cache != nil && c.holds != "":
			st.Reason = "holds " + c.holds + "; not touched (the cache is on " + n.cache.Disk + ")"
		case n.cache != nil:
			st.Reason = "not needed: the cache is on " + n.cache.Disk
		case c.holds != "" && !c.wipable:
			st.Reason = "holds " + c.holds + "; not touched (gridnode.wipe=" + wipeKey(c.disk) + " allows wiping it)"
		case c.holds != "":
			st.Reason = "holds " + c.holds + "; may be wiped (gridnode.wipe) but no cache could be made"
		case !n.mayCreate:
			st.Reason = "empty; the cache is made once the list of disks settles"
		default:
			st.Reason = "empty, but no cache could be made on it"
		}
	}
	return f
}

// pick chooses the disk for a new cache: empty SSDs, then empty HDDs, then
// disks the farmer allowed wiping, SSDs first, each in the hardware fact's
// order.
func pick(cands []*candidate) *candidate {
	for _, wipe := range []bool{false, true} {
		for _, typ := range []string{fact.SSD, fact.HDD} {
			for _, c := range cands {
				if c.disk.Type != typ {
					continue
				}
				if (!wipe && c.holds == "") || (wipe && c.holds != "" && c.wipable) {
					return c
				}
			}
		}
	}
	return nil
}

// wipeAllowed says whether the farmer's wipe list names the disk.
func (n *node) wipeAllowed(d fact.Disk) bool {
	for _, w := range n.cfg.Wipe {
		if w == "all" || (d.Serial != "" && w == d.Serial) || (d.Serial == "" && w == d.Name) {
			return true
		}
	}
	return false
}

// inspect reads what a disk holds; a disk that cannot be read is treated as
// holding data.
func (n *node) inspect(d fact.Disk) (holds string, wipable bool) {
	dev := filepath.Join(n.devDir, d.Name)
	fh, err := os.Open(dev)
	if err != nil {
		return fmt.Sprintf("unreadable data (%v)", err), false
	}
	defer fh.Close()
	size := int64(d.Size)
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	what, err := Inspect(fh, size)
	if err != nil {
		return fmt.Sprintf("unreadable data (%v)", err), false
	}
	return what, what != "" && n.wipeAllowed(d)
}

// findLabel returns the partition (or the disk itself) of disk that holds
// an ext4 file system labelled Label, "" when none does.
func (n *node) findLabel(disk string) string {
	devs := partitions(n.sysDir, disk)
	devs = append(devs, disk)
	for _, p := range devs {
		fh, err := os.Open(filepath.Join(n.devDir, p))
		if err != nil {
			continue
		}
		l, ok := Ext4Label(fh)
		fh.Close()
		if ok && l == Label {
			return p
		}
	}
	return ""
}

// partitions lists the kernel's partitions of disk, in sysfs order.
func partitions(sysDir, disk string) []string {
	var l []string
	ents, _ := os.ReadDir(filepath.Join(sysDir, "block", disk))
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(sysDir, "block", disk, e.Name(), "partition")); err == nil {
			l = append(l, e.Name())
		}
	}
	return l
}

// create formats the chosen disk and mounts its partition.
func (n *node) create(c *candidate) error {
	d := c.disk
	dev := filepath.Join(n.devDir, d.Name)
	if c.holds != "" {
		n.log.Warn("wiping a disk for the cache, as gridnode.wipe allows", "disk", d.Name, "serial", d.Serial, "held", c.holds)
	}
	n.log.Info("preparing the cache", "disk", d.Name, "serial", d.Serial, "type", d.Type, "size", d.Size)
	start := time.Now()
	if _, _, err := Format(dev); err != nil {
		return fmt.Errorf("preparing the cache on %s (serial %s): %v", d.Name, d.Serial, err)
	}
	n.log.Info("cache file system written", "disk", d.Name, "took", time.Since(start).Round(time.Millisecond))
	part, err := n.partDev(n, d.Name)
	if err != nil {
		return fmt.Errorf("preparing the cache on %s (serial %s): %v", d.Name, d.Serial, err)
	}
	if err := n.mount(filepath.Join(n.devDir, part), n.mountDir); err != nil {
		return fmt.Errorf("mounting the new cache %s at %s: %v", part, n.mountDir, err)
	}
	n.cache = &fact.Cache{Disk: d.Name, Partition: part, Mount: n.mountDir, Label: Label, Fresh: true}
	return nil
}

// waitPartition waits (up to 10 s) for the kernel to show the disk's first
// partition in sysfs and devtmpfs to make its node.
func waitPartition(n *node, disk string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, p := range partitions(n.sysDir, disk) {
			if strings.TrimSpace(readFile(filepath.Join(n.sysDir, "block", disk, p, "partition"))) == "1" {
				if _, err := os.Stat(filepath.Join(n.devDir, p)); err == nil {
					return p, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("partition 1 of %s did not appear in %s/block/%s within 10 s after re-reading the partition table", disk, n.sysDir, disk)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// mountCache mounts the ext4 file system on dev at dir, loading the ext4
// module when the kernel does not know the file system yet (PID 1 loads
// drivers for devices, not for file systems). Already mounted is fine.
func mountCache(dev, dir string) error {
	if mounted(dev, dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME, "")
	if errors.Is(err, unix.ENODEV) {
		if perr := kmodule.Probe("ext4", ""); perr != nil {
			return fmt.Errorf("the kernel has no ext4 and loading the ext4 module failed: %v", perr)
		}
		err = unix.Mount(dev, dir, "ext4", unix.MS_NOATIME, "")
	}
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	return nil
}

// mounted says whether dev is mounted at dir (/proc/self/mounts).
func mounted(dev, dir string) bool {
	for _, line := range strings.Split(readFile("/proc/self/mounts"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == dev && f[1] == dir {
			return true
		}
	}
	return false
}
