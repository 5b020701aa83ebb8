package workloads

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestGPUDevices: a GPU's device nodes are its DRM nodes, and its VFIO
// group when vfio-pci drives it; none when no driver made any.
func TestGPUDevices(t *testing.T) {
	sys := t.TempDir()
	dev := func(addr string) string { return filepath.Join(sys, "bus/pci/devices", addr) }
	for _, d := range []string{dev("0000:01:00.0") + "/drm/card1", dev("0000:01:00.0") + "/drm/renderD129", dev("0000:02:00.0"), dev("0000:03:00.0"), sys + "/bus/pci/drivers/vfio-pci", sys + "/kernel/iommu_groups/14"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("../../../bus/pci/drivers/vfio-pci", dev("0000:02:00.0")+"/driver")
	os.Symlink("../../../kernel/iommu_groups/14", dev("0000:02:00.0")+"/iommu_group")
	for addr, want := range map[string][]string{
		"0000:01:00.0": {"/dev/dri/card1", "/dev/dri/renderD129"},
		"0000:02:00.0": {"/dev/vfio/14"},
		"0000:03:00.0": nil,
	} {
		if got := gpuDevices(sys, addr); !slices.Equal(got, want) {
			t.Errorf("gpuDevices(%s) = %v; want %v", addr, got, want)
		}
	}
}

// TestEnviron: the deployment's variables go over the image's, in a
// stable order, and PATH is always set.
func TestEnviron(t *testing.T) {
	got := environ([]string{"A=image", "B=image"}, map[string]string{"B": "file", "C": "file"})
	if want := []string{"A=image", "B=file", "C=file", defaultPath}; !slices.Equal(got, want) {
		t.Fatalf("environ = %q; want %q", got, want)
	}
}
