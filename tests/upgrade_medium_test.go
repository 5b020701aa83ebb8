package tests

// Issue 13's boot medium with two release slots, booted: release 2 of the
// default spec is written into release 1's USB image by the node's own
// medium writer (upgrade/medium), on the host, and the stick then boots
// release 2 on SeaBIOS (isolinux → ISO 9660 records into slot b) and on OVMF
// (systemd-boot → slot b's UKI); switched back, it boots release 1 from slot
// a, which the upgrade kept.

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/gridnode/gridnode/qemu"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/medium"
)

// release builds images/node.yaml as version (kernel, UKI and USB image)
// into the shared test cache, once per test binary, with the test binary's
// release key (testReleaseKey) among its release keys.
func releaseBuild(t *testing.T, version string) *build.Result {
	return releaseBuildWith(t, version, nil)
}

// releaseBuildWith is releaseBuild with change made to the spec; versions
// name builds, so each version is built one way.
func releaseBuildWith(t *testing.T, version string, change func(*spec.Spec)) *build.Result {
	t.Helper()
	key := "node@" + version
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if r := images[key]; r != nil {
		return r
	}
	s, err := spec.Load(filepath.Join(root, "images", "node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s.Version = version
	s.ReleaseKeys = append(s.ReleaseKeys, testReleaseKey(t).pub.String())
	if change != nil {
		change(s)
	}
	out := filepath.Join(root, ".cache", "tests", "release-"+version)
	os.RemoveAll(out)
	r, err := build.Build(context.Background(), build.Options{
		Spec: s, Out: out, Cache: filepath.Join(root, ".cache"), Src: root,
		Epoch: epoch, Formats: []string{"kernel", "uki", "usb"}, Warn: io.Discard,
	})
	if err != nil {
		t.Fatalf("building release %s: %v", version, err)
	}
	images[key] = r
	return r
}

// releaseKey is a release key pair.
type releaseKey struct {
	priv ed25519.PrivateKey
	pub  doc.PublicKey
}

var (
	releaseKeyOnce sync.Once
	releaseKeyPair releaseKey
	releaseKeyErr  error
)

// testReleaseKey is the test binary's release key, made once: the releases
// it builds trust it, and it signs their documents.
func testReleaseKey(t *testing.T) releaseKey {
	t.Helper()
	releaseKeyOnce.Do(func() {
		releaseKeyPair.priv, releaseKeyErr = doc.GenerateKey()
		if releaseKeyErr == nil {
			releaseKeyPair.pub = doc.PublicKey(releaseKeyPair.priv.Public().(ed25519.PublicKey))
		}
	})
	if releaseKeyErr != nil {
		t.Fatal(releaseKeyErr)
	}
	return releaseKeyPair
}

// signedFile is the release document's entry for a file: what the node
// checks the bytes it writes against.
func signedFile(t *testing.T, p string) doc.File {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return doc.File{Name: filepath.Base(p), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

func TestUpgradeMediumBoots(t *testing.T) {
	skipBoot(t)
	const v1, v2 = "0.1.0-slot", "0.2.0-slot"
	r1, r2 := releaseBuild(t, v1), releaseBuild(t, v2)
	stick := filepath.Join(t.TempDir(), "stick.img")
	copyMedium(t, filepath.Join(r1.Dir, "gridnode-"+v1+".img"), stick)

	efi := filepath.Join(r2.Dir, "gridnode-"+v2+".efi")
	src, err := os.Open(efi)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dev, err := medium.OpenFile(stick)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := medium.Install(dev, src, signedFile(t, efi), v2)
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("slots after the upgrade: %+v", slots)
	if len(slots) != 2 || slots[0].Version != v1 || slots[1].Version != v2 || !slots[1].UEFI || !slots[1].BIOS {
		t.Fatalf("slots after installing %s: %+v", v2, slots)
	}
	bootsVersion(t, stick, v2)

	dev, err = medium.OpenFile(stick)
	if err != nil {
		t.Fatal(err)
	}
	err = medium.SetDefault(dev, "a")
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	bootsVersion(t, stick, v1)
}

// bootsVersion boots the stick on SeaBIOS and on OVMF at once and waits on
// each for the node program's first line naming version, then for the node
// finding its boot medium (gridnode.boot=usb from the slot's boot entry).
func bootsVersion(t *testing.T, stick, version string) {
	t.Helper()
	t.Run(version, func(t *testing.T) {
		for _, fw := range []qemu.Firmware{qemu.BIOS, qemu.UEFI} {
			t.Run(fw.String(), func(t *testing.T) {
				t.Parallel()
				vm := boot(t, qemu.Options{Boot: qemu.USBBoot(stick), Firmware: fw})
				m := expect(t, vm, `gridnode: init (\S+)`, bootTimeout)
				if m.Groups[1] != version {
					t.Fatalf("%s booted version %s, want %s", fw, m.Groups[1], version)
				}
				expect(t, vm, `gridnode: boot medium sda1 \(vfat on disk \S+\)`, bootTimeout)
			})
		}
	})
}
