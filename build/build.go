// Package build turns an image spec into boot media: it resolves the kernel,
// computes the driver closure, compiles the node program, packs a
// deterministic initramfs and hands (kernel, initramfs, cmdline) to the
// writers of each output format. Same inputs and SOURCE_DATE_EPOCH give the
// same bytes.
package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/gridnode/gridnode/upgrade/doc"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/filehash"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/internal/round"

	"github.com/gridnode/gridnode/build/deb"
	"github.com/gridnode/gridnode/build/initramfs"
	"github.com/gridnode/gridnode/build/kernel"
	"github.com/gridnode/gridnode/build/kmod"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/gridnode/gridnode/node/config"
	"gopkg.in/yaml.v3"
)

// Options of one build.
type Options struct {
	Spec    *spec.Spec
	Out     string    // output folder
	Cache   string    // cache folder (debs, unpacked kernels, indexes)
	Src     string    // gridnode source tree the node program is compiled from
	Epoch   time.Time // SOURCE_DATE_EPOCH
	Formats []string  // kernel, uki, iso, usb, pxe
	// Compression of the initramfs: zstd (default) or gzip.
	Compression string
	// Progress, when set, receives one line per step; nil is quiet.
	Progress io.Writer
	// Warn receives warnings (firmware not found, …); nil discards them.
	Warn io.Writer
}

// Result says what a build wrote.
type Result struct {
	Dir      string
	Manifest *Manifest
	// Kernel, Initramfs and NodeBinary are paths of the build's parts.
	Kernel, Initramfs, NodeBinary string
	Cmdline                       string
	Debs                          []*deb.Package
	// Media is what the format writers were given (boot-loader files in
	// the cache, gridnode.conf); nil when only the kernel format was built.
	Media *media.Input
}

// Names of the kernel-format outputs.
const (
	KernelFile    = "vmlinuz"
	CmdlineFile   = "cmdline"
	ManifestFile  = "manifest.json"
	InitramfsBase = "initramfs.cpio"
)

// Build runs the whole build.
func Build(ctx context.Context, o Options) (*Result, error) {
	b := &builder{o: o, start: time.Now()}
	if b.o.Compression == "" {
		b.o.Compression = "zstd"
	}
	if len(b.o.Formats) == 0 {
		b.o.Formats = []string{"kernel"}
	}
	for _, f := range b.o.Formats {
		if _, ok := Formats[f]; !ok && f != "kernel" {
			return nil, fmt.Errorf("format %q: allowed values are %s", f, strings.Join(FormatNames(), ", "))
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	return b.run(ctx)
}

type builder struct {
	o     Options
	start time.Time
	man   Manifest
	res   Result
}

func (b *builder) step(format string, a ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, "%6.1fs  %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, a...))
	}
}

func (b *builder) warn(format string, a ...any) {
	if b.o.Warn != nil {
		fmt.Fprintf(b.o.Warn, "warning: "+format+"\n", a...)
	}
}

func (b *builder) run(ctx context.Context) (*Result, error) {
	s := b.o.Spec
	b.man = Manifest{Version: s.Version, SourceDateEpoch: b.o.Epoch.Unix(), Flavour: s.Flavour, ReleaseKeys: s.ReleaseKeys}
	specSum, err := filehash.SHA256(s.File)
	if err != nil {
		return nil, err
	}
	b.man.Inputs = append(b.man.Inputs, Input{Kind: "spec", Name: filepath.Base(s.File), SHA256: specSum})

	// Kernel.
	k, err := kernel.Resolve(ctx, s.Kernel, b.o.Cache)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b.man.Kernel = k.Release
	b.man.Inputs = append(b.man.Inputs, Input{Kind: "kernel-" + k.Origin.Kind, Name: k.Origin.Name, Version: k.Origin.Version, SHA256: k.Origin.SHA256})
	b.step("fetch    kernel %s %s (%s)", k.Origin.Name, k.Origin.Version, k.Release)

	ar := initramfs.New()

	// Modules and firmware.
	ix, err := kmod.Load(k.ModulesDir, filepath.Join(b.o.Cache, "kmodindex", k.Origin.SHA256[:16]+".json"))
	if err != nil {
		return nil, fmt.Errorf("build: kernel modules: %w", err)
	}
	want, _, err := ix.Expand(s.Drivers)
	if err != nil {
		return nil, s.Errorf("drivers", "%v", err)
	}
	mods := ix.Closure(want)
	var modBytes int64
	mroot := "lib/modules/" + k.Release
	for _, n := range mods {
		m := ix.Modules[n]
		src := filepath.Join(k.ModulesDir, m.Path)
		st, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		modBytes += st.Size()
		ar.File(mroot+"/"+m.Path, src, 0o644)
	}
	dep, alias, softdep := ix.Tables(mods)
	ar.Bytes(mroot+"/modules.dep", dep, 0o644)
	ar.Bytes(mroot+"/modules.alias", alias, 0o644)
	ar.Bytes(mroot+"/modules.softdep", softdep, 0o644)
	if bi, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin")); err == nil {
		ar.Bytes(mroot+"/modules.builtin", bi, 0o644)
	}
	b.man.Modules = mods
	b.step("modules  %d modules (%d asked for), %s", len(mods), len(want), round.Bytes(uint64(modBytes)))

	if err := b.firmware(ctx, ix, mods, ar); err != nil {
		return nil, err
	}

	// Support files from Debian: pci.ids for the hardware probe; busybox for
	// the debug flavour's shells.
	pciids, err := b.debFile(ctx, "pci.ids", "usr/share/misc/pci.ids")
	if err != nil {
		return nil, err
	}
	ar.Bytes("usr/share/misc/pci.ids", pciids, 0o644)
	ar.Symlink("usr/share/hwdata/pci.ids", "../misc/pci.ids")
	if s.Flavour == config.FlavourDebug {
		bb, err := b.debFile(ctx, "busybox-static", "bin/busybox")
		if err != nil {
			return nil, err
		}
		ar.Bytes("bin/busybox", bb, 0o755)
		for _, app := range busyboxApplets {
			ar.Symlink("bin/"+app, "busybox")
		}
	}

	// The node program.
	bin, err := b.compile(ctx)
	if err != nil {
		return nil, err
	}
	ar.File("init", bin, 0o755)
	helper, err := b.compileHelper(ctx)
	if err != nil {
		return nil, err
	}
	ar.File(HelperPath, helper, 0o755)

	// Configuration, skeleton and extra files.
	nodeYAML, err := yaml.Marshal(s.Node)
	if err != nil {
		return nil, err
	}
	ar.Bytes(strings.TrimPrefix(config.ImagePath, "/"), append([]byte("# baked in by gridnode build from "+filepath.Base(s.File)+"\n"), nodeYAML...), 0o644)
	ar.Bytes("etc/os-release", []byte(osRelease(s.Version)), 0o644)
	ar.Bytes(strings.TrimPrefix(doc.KeysPath, "/"), doc.KeysFile(s.Keys()), 0o644)
	if err := b.tlsRoots(ar); err != nil {
		return nil, err
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "var/cache", "root", "etc"} {
		ar.Dir(d, 0o755)
	}
	// The kernel opens /dev/console for init's output before devtmpfs is
	// mounted, so the node exists in the archive.
	ar.CharDev("dev/console", 0o600, 5, 1)
	ar.CharDev("dev/null", 0o666, 1, 3)
	for _, f := range s.Files {
		mode := uint64(0o644)
		if f.Mode != "" {
			mode, _ = strconv.ParseUint(f.Mode, 8, 32)
		}
		src := s.Path(f.Src)
		if _, err := os.Stat(src); err != nil {
			return nil, s.Errorf("files", "files: %v", err)
		}
		ar.File(f.Dst, src, mode)
	}

	// Pack and compress.
	var raw bytes.Buffer
	if _, err := ar.WriteTo(&raw, b.o.Epoch.Unix()); err != nil {
		return nil, err
	}
	comp, err := initramfs.Compress(raw.Bytes(), b.o.Compression)
	if err != nil {
		return nil, err
	}
	b.step("pack     initramfs %s uncompressed, %s %s", round.Bytes(uint64(raw.Len())), round.Bytes(uint64(len(comp))), b.o.Compression)
	b.man.InitramfsBytes = int64(raw.Len())

	ext := map[string]string{"zstd": ".zst", "gzip": ".gz"}[b.o.Compression]
	initrdName := InitramfsBase + ext
	cmdline := strings.TrimSpace(s.Cmdline)
	if err := b.writeOut(initrdName, comp); err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return nil, err
	}
	if err := b.writeOut(KernelFile, kb); err != nil {
		return nil, err
	}
	if err := b.writeOut(CmdlineFile, []byte(cmdline+"\n")); err != nil {
		return nil, err
	}
	b.res = Result{Dir: b.o.Out, Kernel: filepath.Join(b.o.Out, KernelFile), Initramfs: filepath.Join(b.o.Out, initrdName), NodeBinary: bin, Cmdline: cmdline}

	var in media.Input
	for _, f := range b.o.Formats {
		if f == "kernel" {
			continue
		}
		if in.Kernel == "" {
			if in, err = b.mediaInput(ctx); err != nil {
				return nil, err
			}
			b.res.Media = &in
		}
		t := time.Now()
		files, err := Formats[f](in, b.o.Out)
		if err != nil {
			return nil, fmt.Errorf("build: format %s: %w", f, err)
		}
		for _, p := range files {
			if err := b.addOutput(p); err != nil {
				return nil, err
			}
		}
		b.step("format   %s in %.1fs", f, time.Since(t).Seconds())
	}

	sort.Slice(b.man.Outputs, func(i, j int) bool { return b.man.Outputs[i].Name < b.man.Outputs[j].Name })
	mj, err := json.MarshalIndent(b.man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.o.Out, ManifestFile), append(mj, '\n'), 0o644); err != nil {
		return nil, err
	}
	b.step("done     %s in %.1fs", b.o.Out, time.Since(b.start).Seconds())
	b.res.Manifest = &b.man
	return &b.res, nil
}

func (b *builder) writeOut(name string, data []byte) error {
	p := filepath.Join(b.o.Out, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	return b.addOutput(p)
}

func (b *builder) addOutput(p string) error {
	sum, err := filehash.SHA256(p)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(b.o.Out, p)
	if err != nil {
		rel = filepath.Base(p)
	}
	for i, o := range b.man.Outputs {
		if o.Name == rel {
			b.man.Outputs[i] = Output{Name: rel, SHA256: sum, Size: st.Size()}
			return nil
		}
	}
	b.man.Outputs = append(b.man.Outputs, Output{Name: rel, SHA256: sum, Size: st.Size()})
	return nil
}

// debFile fetches package pkg and returns the content of one file in it.
func (b *builder) debFile(ctx context.Context, pkg, name string) ([]byte, error) {
	p, err := b.fetchDeb(ctx, pkg)
	if err != nil {
		return nil, err
	}
	return fileIn(p, name)
}

// fetchDeb fetches package pkg and records it as an input.
func (b *builder) fetchDeb(ctx context.Context, pkg string) (*deb.Package, error) {
	p, err := deb.Fetch(ctx, filepath.Join(b.o.Cache, "debs"), pkg)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b.noteDeb(p)
	return p, nil
}

// fileIn returns the content of the file name in package p.
func fileIn(p *deb.Package, name string) ([]byte, error) {
	var err error
	// Packages link some files elsewhere (ipxe's /usr/lib/ipxe/ipxe.efi is
	// a link to /boot/ipxe.efi); follow a few links inside the package.
	for hops := 0; hops < 4; hops++ {
		var data []byte
		link := ""
		err = p.Walk(func(h *tar.Header, r io.Reader) error {
			if strings.TrimPrefix(h.Name, "./") != name {
				return nil
			}
			switch h.Typeflag {
			case tar.TypeReg:
				var err error
				data, err = io.ReadAll(r)
				return err
			case tar.TypeSymlink:
				link = h.Linkname
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if data != nil {
			return data, nil
		}
		if link == "" {
			break
		}
		if filepath.IsAbs(link) {
			name = strings.TrimPrefix(filepath.Clean(link), "/")
		} else {
			name = filepath.Join(filepath.Dir(name), link)
		}
	}
	return nil, fmt.Errorf("build: package %s %s has no %s", p.Name, p.Version, name)
}

// tlsRoots bakes the spec's extra TLS roots into the image as one PEM file
// (internal/roots reads it on the node) and lists each as an input.
func (b *builder) tlsRoots(ar *initramfs.Archive) error {
	s := b.o.Spec
	var out bytes.Buffer
	for i, p := range s.TLSRoots {
		raw, err := os.ReadFile(s.Path(p))
		if err != nil {
			return s.Errorf(fmt.Sprintf("tls_roots[%d]", i), "tls_roots: %v", err)
		}
		certs, err := roots.ParsePEM(raw)
		if err != nil {
			return s.Errorf(fmt.Sprintf("tls_roots[%d]", i), "tls_roots: %s: %v", p, err)
		}
		for _, c := range certs {
			pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		sum := sha256.Sum256(raw)
		b.man.Inputs = append(b.man.Inputs, Input{Kind: "tls-root", Name: filepath.Base(p), SHA256: hex.EncodeToString(sum[:])})
	}
	if out.Len() > 0 {
		ar.Bytes(strings.TrimPrefix(roots.ExtraPath, "/"), out.Bytes(), 0o644)
	}
	return nil
}

func (b *builder) noteDeb(p *deb.Package) {
	for _, d := range b.res.Debs {
		if d.SHA256 == p.SHA256 {
			return
		}
	}
	b.res.Debs = append(b.res.Debs, p)
	b.man.Inputs = append(b.man.Inputs, Input{Kind: "deb", Name: p.Name, Version: p.Version, SHA256: p.SHA256})
}

// firmware adds the firmware files the included modules declare, from the
// spec's firmware packages; a declared file no package has is a warning.
func (b *builder) firmware(ctx context.Context, ix *kmod.Index, mods []string, ar *initramfs.Archive) error {
	have := map[string]string{} // lib/firmware-relative name → unpacked path
	for _, name := range b.o.Spec.Firmware.Packages {
		p, err := deb.Fetch(ctx, filepath.Join(b.o.Cache, "debs"), name)
		if err != nil {
			return b.o.Spec.Errorf("firmware", "firmware: %v", err)
		}
		b.noteDeb(p)
		dir := filepath.Join(b.o.Cache, "firmware", p.SHA256[:16])
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
			os.RemoveAll(dir)
			if err := p.Extract(dir); err != nil {
				return err
			}
			os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
		}
		root := filepath.Join(dir, "lib", "firmware")
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				have[rel] = path
			}
			return nil
		})
	}
	missing := map[string][]string{}
	var n int
	var bytes int64
	for _, m := range mods {
		for _, fw := range ix.Modules[m].Firmware {
			found := false
			for _, cand := range []string{fw, fw + ".xz", fw + ".zst"} {
				if src, ok := have[cand]; ok {
					if !ar.Has("lib/firmware/" + cand) {
						st, _ := os.Stat(src)
						if st != nil {
							bytes += st.Size()
						}
						ar.File("lib/firmware/"+cand, src, 0o644)
						b.man.Firmware = append(b.man.Firmware, cand)
						n++
					}
					found = true
				}
			}
			if !found {
				missing[m] = append(missing[m], fw)
			}
		}
	}
	sort.Strings(b.man.Firmware)
	if len(missing) > 0 {
		var names []string
		total := 0
		for m, l := range missing {
			names = append(names, fmt.Sprintf("%s (%d)", m, len(l)))
			total += len(l)
		}
		sort.Strings(names)
		b.warn("%d firmware files declared by %d modules are in no firmware package of the spec: %s; add the Debian package that has them (e.g. firmware-realtek, firmware-bnx2, firmware-misc-nonfree from non-free-firmware) to firmware.packages, or ignore this if the node has no such hardware",
			total, len(missing), strings.Join(names, ", "))
	}
	b.step("firmware %d files, %s", n, round.Bytes(uint64(bytes)))
	return nil
}

// compile builds the node program: static, trimmed, stripped, with the
// build ID cleared so the same source gives the same bytes.
func (b *builder) compile(ctx context.Context) (string, error) {
	out := filepath.Join(b.o.Cache, "node", "init")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version="+b.o.Spec.Version, "-o", out, "./init")
	cmd.Dir = b.o.Src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build: compiling the node program in %s: %v\n%s", b.o.Src, err, stderr.String())
	}
	st, err := os.Stat(out)
	if err != nil {
		return "", err
	}
	sum, _ := filehash.SHA256(out)
	b.man.Inputs = append(b.man.Inputs, Input{Kind: "go", Name: "go", Version: runtime.Version()},
		Input{Kind: "node-binary", Name: "init", SHA256: sum})
	b.man.NodeBinaryBytes = st.Size()
	b.step("compile  node program %s", round.Bytes(uint64(st.Size())))
	return out, nil
}

func osRelease(version string) string {
	return fmt.Sprintf("NAME=gridnode\nID=gridnode\nVERSION_ID=%s\nPRETTY_NAME=\"gridnode %s\"\nHOME_URL=\"https://github.com/gridnode/gridnode\"\n", version, version)
}

var busyboxApplets = []string{"sh", "ash", "ls", "cat", "ps", "kill", "killall", "mount", "umount", "ip", "dmesg", "free",
	"df", "du", "grep", "less", "more", "vi", "top", "ping", "wget", "ifconfig", "route", "mkdir", "rm", "cp", "mv",
	"ln", "echo", "sleep", "head", "tail", "sync", "poweroff", "reboot", "lsmod", "modprobe", "insmod", "uname",
	"hexdump", "find", "xargs", "sed", "awk", "wc", "date", "env", "stty", "netstat", "nslookup", "fdisk", "pidof", "timeout"}
