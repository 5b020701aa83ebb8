// Package kmod computes which kernel modules an image needs: it indexes a
// modules tree from the modules' own .modinfo sections (Debian's packages ship
// no modules.dep; depmod makes it at install time), resolves driver names and
// groups to the closure of their dependencies, and writes modules.dep,
// modules.alias and modules.softdep for exactly what it included.
package kmod

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gridnode/gridnode/workload/kernel"
)

// Module is what a .ko file says of itself.
type Module struct {
	Name     string   `json:"name"`
	Path     string   `json:"path"` // relative to the modules folder
	Depends  []string `json:"depends,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	SoftPre  []string `json:"softpre,omitempty"`
	SoftPost []string `json:"softpost,omitempty"`
	Firmware []string `json:"firmware,omitempty"`
}

// Index is every module of one kernel, by name, and the built-in ones.
type Index struct {
	Release string             `json:"release"`
	Modules map[string]*Module `json:"modules"`
	Builtin map[string]bool    `json:"builtin"`
}

// Groups are named driver sets a spec may use instead of module names.
var Groups = map[string][]string{
	"virtio": {"virtio_net", "virtio_blk", "virtio_scsi", "virtio_pci", "virtio_console", "virtio_rng"},
	// storage: NVMe, SATA/AHCI and older SATA chipsets, IDE (PIIX), USB
	// sticks and UAS behind every USB host controller, and the RAID and
	// HBA controllers of servers farmers reuse (LSI/Broadcom MegaRAID,
	// SAS2/3 and Fusion-MPT, Adaptec, HP Smart Array, Microchip SmartPQI,
	// LSI 53c8xx, Areca, 3ware, Marvell, PMC, Intel SCU), and VMware's.
	"storage": {"nvme", "ahci", "ata_piix", "ata_generic", "sata_nv", "sata_sil24", "sata_via", "sd_mod", "sr_mod", "virtio_scsi",
		"usb_storage", "uas", "xhci_pci", "ehci_pci", "uhci_hcd", "ohci_pci",
		"megaraid_sas", "megaraid_mbox", "mpt3sas", "mpi3mr", "mptsas", "mptspi", "aacraid", "hpsa", "smartpqi", "sym53c8xx",
		"arcmsr", "3w_9xxx", "3w_sas", "mvsas", "pm80xx", "isci", "vmw_pvscsi"},
	// nics: Intel, Broadcom, Mellanox/NVIDIA, Realtek, Emulex, QLogic,
	// Aquantia, Solarflare, Chelsio, NVIDIA nForce, Marvell, Cisco, Amazon
	// and the NICs hypervisors emulate.
	"nics": {"e100", "e1000", "e1000e", "igb", "igc", "igbvf", "ixgbe", "ixgbevf", "i40e", "ice", "r8169", "8139too", "8139cp",
		"tg3", "bnx2", "bnx2x", "bnxt_en", "mlx4_en", "mlx5_core", "be2net", "qede", "atlantic", "sfc", "cxgb4", "forcedeth",
		"sky2", "skge", "enic", "ena", "vmxnet3", "virtio_net"},
	// platform: the ACPI power button and the input layer PID 1 reads it
	// through; the hardware RNGs that fill the kernel's random pool
	// (chipsets' and CPUs', TPMs: built into Debian's kernel); hardware
	// watchdogs, which bound an upgrade's trial boot (upgrade/kexec):
	// Intel and AMD chipsets' TCO timers and QEMU's i6300esb.
	"platform": {"button", "evdev", "amd_rng", "intel_rng", "via_rng", "tpm_tis", "tpm_crb",
		"i6300esb", "iTCO_wdt", "sp5100_tco"},
	"filesystems": {"ext4", "vfat", "iso9660", "btrfs", "nls_cp437", "nls_utf8", "nls_ascii"},
	// workloads: containers and their network (package workload/kernel).
	"workloads": kernel.Modules,
}

// GroupNames lists the groups, sorted, for error messages.
func GroupNames() []string {
	var l []string
	for g := range Groups {
		l = append(l, g)
	}
	sort.Strings(l)
	return l
}

// Norm is a module name as the kernel spells it: dashes become underscores.
func Norm(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Load reads the index of the modules folder dir, from cacheFile when it is
// there, else by scanning every .ko and then writing cacheFile.
func Load(dir, cacheFile string) (*Index, error) {
	if b, err := os.ReadFile(cacheFile); err == nil {
		var ix Index
		if json.Unmarshal(b, &ix) == nil && ix.Release == filepath.Base(dir) {
			return &ix, nil
		}
	}
	ix, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	if cacheFile != "" {
		if b, err := json.Marshal(ix); err == nil {
			os.MkdirAll(filepath.Dir(cacheFile), 0o755)
			os.WriteFile(cacheFile, b, 0o644)
		}
	}
	return ix, nil
}

// Scan indexes the modules folder dir (lib/modules/RELEASE).
func Scan(dir string) (*Index, error) {
	ix := &Index{Release: filepath.Base(dir), Modules: map[string]*Module{}, Builtin: map[string]bool{}}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			ix.Builtin[Norm(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .ko modules (compressed modules are not supported yet)", dir)
	}
	mods := make([]*Module, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				mods[i], errs[i] = readModinfo(dir, paths[i])
			}
		}()
	}
	for i := range paths {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, m := range mods {
		if errs[i] != nil {
			return nil, errs[i]
		}
		ix.Modules[m.Name] = m
	}
	return ix, nil
}

func readModinfo(dir, rel string) (*Module, error) {
	f, err := elf.Open(filepath.Join(dir, rel))
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", rel, err)
	}
	defer f.Close()
	m := &Module{Path: rel, Name: Norm(strings.TrimSuffix(filepath.Base(rel), ".ko"))}
	s := f.Section(".modinfo")
	if s == nil {
		return m, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", rel, err)
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			m.Name = Norm(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					m.Depends = append(m.Depends, Norm(d))
				}
			}
		case "alias":
			m.Aliases = append(m.Aliases, v)
		case "firmware":
			m.Firmware = append(m.Firmware, v)
		case "softdep":
			pre, post := parseSoftdep(v)
			m.SoftPre = append(m.SoftPre, pre...)
			m.SoftPost = append(m.SoftPost, post...)
		}
	}
	return m, nil
}

// parseSoftdep parses "pre: a b post: c".
func parseSoftdep(v string) (pre, post []string) {
	var cur *[]string
	for _, f := range strings.Fields(v) {
		switch f {
		case "pre:":
			cur = &pre
		case "post:":
			cur = &post
		default:
			if cur != nil {
				*cur = append(*cur, Norm(f))
			}
		}
	}
	return pre, post
}

// Expand turns a spec's driver list (module names and group names) into
// module names. A name that is neither a module of this kernel, a built-in,
// nor a group is an error naming it.
func (ix *Index) Expand(drivers []string) (mods []string, builtin []string, err error) {
	seen := map[string]bool{}
	var unknown []string
	var add func(n string, fromGroup bool)
	add = func(n string, fromGroup bool) {
		if g, ok := Groups[n]; ok && !fromGroup {
			for _, m := range g {
				add(m, true)
			}
			return
		}
		n = Norm(n)
		if seen[n] {
			return
		}
		seen[n] = true
		switch {
		case ix.Modules[n] != nil:
			mods = append(mods, n)
		case ix.byAlias(n) != "":
			// Filesystems are known by their mount type: iso9660 is isofs.
			mods = append(mods, ix.byAlias(n))
		case ix.Builtin[n]:
			builtin = append(builtin, n)
		default:
			unknown = append(unknown, n)
		}
	}
	for _, d := range drivers {
		add(d, false)
	}
	if len(unknown) > 0 {
		return nil, nil, fmt.Errorf("drivers %s: not modules of kernel %s (nor built in, nor a group: %s)", strings.Join(unknown, ", "), ix.Release, strings.Join(GroupNames(), ", "))
	}
	return mods, builtin, nil
}

// byAlias finds the module that declares n, or "fs-"+n, as a literal alias.
func (ix *Index) byAlias(n string) string {
	for _, m := range ix.Modules {
		for _, a := range m.Aliases {
			if a == n || a == "fs-"+n {
				return m.Name
			}
		}
	}
	return ""
}

// Closure adds every dependency and soft dependency of names, sorted.
func (ix *Index) Closure(names []string) []string {
	in := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		m := ix.Modules[n]
		if m == nil || in[n] {
			return
		}
		in[n] = true
		for _, d := range m.Depends {
			visit(d)
		}
		// Soft dependencies name modules or aliases: ext4 and libcrc32c
		// say "pre: crc32c", which is an alias of crc32c_generic and
		// crc32c_intel. Every provider goes in; the kernel picks.
		for _, d := range append(append([]string{}, m.SoftPre...), m.SoftPost...) {
			if ix.Modules[d] != nil {
				visit(d)
				continue
			}
			for _, p := range ix.providers(d) {
				visit(p)
			}
		}
	}
	for _, n := range names {
		visit(n)
	}
	return slices.Sorted(maps.Keys(in))
}

// providers lists the modules that declare alias a literally, sorted.
func (ix *Index) providers(a string) []string {
	var l []string
	for name, m := range ix.Modules {
		for _, x := range m.Aliases {
			if x == a || x == "crypto-"+a {
				l = append(l, name)
				break
			}
		}
	}
	sort.Strings(l)
	return l
}

// hardDeps lists what n needs loaded before it, from "depends" alone,
// sorted. Soft dependencies are no part of it: they name alternatives
// (crc-t10dif's "pre: crct10dif" is provided by crct10dif_generic and by
// crct10dif_pclmul, which fails with ENODEV on a CPU without PCLMULQDQ),
// and a loader fails every module above a hard dependency that fails. They
// go to modules.softdep, where a loader tries them and carries on.
func (ix *Index) hardDeps(n string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(x string) {
		for _, d := range ix.Modules[x].Depends {
			if !seen[d] && ix.Modules[d] != nil { // nil: built in
				seen[d] = true
				visit(d)
			}
		}
	}
	visit(n)
	return slices.Sorted(maps.Keys(seen))
}

// Tables returns modules.dep, modules.alias and modules.softdep for the
// modules named (which must be closed under dependencies), in the formats
// depmod writes and modprobe and u-root's kmodule read.
func (ix *Index) Tables(names []string) (dep, alias, softdep []byte) {
	var d, a, s strings.Builder
	for _, n := range names {
		m := ix.Modules[n]
		var deps []string
		for _, x := range ix.hardDeps(n) {
			deps = append(deps, ix.Modules[x].Path)
		}
		fmt.Fprintf(&d, "%s:", m.Path)
		for _, p := range deps {
			fmt.Fprintf(&d, " %s", p)
		}
		d.WriteString("\n")
		for _, al := range m.Aliases {
			fmt.Fprintf(&a, "alias %s %s\n", al, n)
		}
		if len(m.SoftPre)+len(m.SoftPost) > 0 {
			fmt.Fprintf(&s, "softdep %s", n)
			if len(m.SoftPre) > 0 {
				fmt.Fprintf(&s, " pre: %s", strings.Join(m.SoftPre, " "))
			}
			if len(m.SoftPost) > 0 {
				fmt.Fprintf(&s, " post: %s", strings.Join(m.SoftPost, " "))
			}
			s.WriteString("\n")
		}
	}
	return []byte(d.String()), []byte(a.String()), []byte(s.String())
}
