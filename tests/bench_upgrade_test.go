//go:build bench

package tests

// The medium writer of issue 13 (go test -tags bench -run
// TestBenchMediumWrite ./tests/): the time to write release 2 into release
// 1's USB image with upgrade/medium.Install (the other slot written, synced,
// read back and checked, then the two one-sector switches, each synced),
// beside its peer in the same run: rewriting the whole stick with release
// 2's image (a copy of the image file, then fsync), which a node without
// slots would need a farmer for.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/upgrade/medium"
)

func TestBenchMediumWrite(t *testing.T) {
	const v1, v2 = "0.1.0-slot", "0.2.0-slot"
	r1, r2 := releaseBuild(t, v1), releaseBuild(t, v2)
	img1 := filepath.Join(r1.Dir, "gridnode-"+v1+".img")
	img2 := filepath.Join(r2.Dir, "gridnode-"+v2+".img")
	efi := filepath.Join(r2.Dir, "gridnode-"+v2+".efi")
	want := signedFile(t, efi)
	// On the disk the cache is on, not a tmpfs: the syncs must cost what
	// they cost.
	dir, err := os.MkdirTemp(filepath.Join(root, ".cache", "tests"), "bench-medium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	stick := filepath.Join(dir, "stick.img")
	var ours, peer []time.Duration
	for i := 0; i < mediaBenchRuns; i++ {
		copyMedium(t, img1, stick)
		syncAll(t, stick)
		src, _ := os.Open(efi)
		start := time.Now()
		dev, err := medium.OpenFile(stick)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := medium.Install(dev, src, want, v2); err != nil {
			t.Fatal(err)
		}
		dev.Close()
		ours = append(ours, time.Since(start))
		src.Close()

		os.Remove(stick)
		syncAll(t, dir)
		start = time.Now()
		rewrite(t, img2, stick)
		peer = append(peer, time.Since(start))
		os.Remove(stick)
	}
	img, _ := os.Stat(img2)
	ukiSize := want.Size
	section(t, "medium-write", fmt.Sprintf(`### Upgrading a USB stick in place (issue 13)

Writing release 2 (images/node.yaml as version %s) into release 1's USB image with the node's medium writer (upgrade/medium.Install: the slot that is not the default written, synced, read back against the signed sha256, then one sector of isolinux.cfg and one of loader.conf, each synced), beside rewriting the whole stick with release 2's image (the image file copied, then fsync), in the same run; image files on the build disk, medians of %d interleaved runs. `+"`go test -tags bench -run TestBenchMediumWrite ./tests/`"+`, %s.

| | time | bytes written |
|---|---|---|
| medium.Install (one slot) | %s | %s (the UKI) + 3 small files |
| rewrite the whole image | %s | %s |

Runs: Install %v; rewrite %v.`, v2, mediaBenchRuns, machine(), shortDur(median(ours)), mib(ukiSize), shortDur(median(peer)), mib(img.Size()), durs(ours), durs(peer)))
}

// syncAll writes back dirty pages of the file system that holds p.
func syncAll(t *testing.T, p string) {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// rewrite copies src over dst, zeros included (a stick has no holes), and
// syncs it.
func rewrite(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(struct{ io.Writer }{out}, in); err != nil { // no copy_file_range: every byte written
		t.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

func durs(d []time.Duration) []string {
	var s []string
	for _, x := range d {
		s = append(s, shortDur(x))
	}
	return s
}
