package qemu

import (
	"os"
	"testing"

	"github.com/gridnode/gridnode/internal/need"
)

func TestAccelEnvOverrides(t *testing.T) {
	for _, want := range []string{"kvm", "tcg"} {
		t.Setenv(AccelEnv, want)
		if got := Accel(); got != want {
			t.Errorf("with %s=%s, Accel() = %q", AccelEnv, want, got)
		}
	}
}

func TestAccelArgs(t *testing.T) {
	if got := accelArgs("tcg", ""); len(got) != 4 || got[1] != "tcg,thread=multi" || got[3] != "max" {
		t.Errorf("accelArgs(tcg) = %q, want multi-threaded TCG with -cpu max", got)
	}
	if got := accelArgs("kvm", ""); got[1] != "kvm" || got[3] != "host" {
		t.Errorf("accelArgs(kvm) = %q", got)
	}
}

// A KVM that cannot run the probe in time counts as absent: with no time at
// all, the probe must say no, whatever the host.
func TestKVMProbeRejectsASlowKVM(t *testing.T) {
	if probeKVM("qemu-system-x86_64", 0) {
		t.Error("probeKVM with a zero deadline said KVM works")
	}
}

func TestAccelDetectsByTrying(t *testing.T) {
	need.Tool(t, "qemu-system-x86_64")
	t.Setenv(AccelEnv, "")
	got := Accel()
	t.Logf("Accel() = %s", got)
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		if got != "tcg" {
			t.Errorf("without a usable /dev/kvm (%v), Accel() = %q, want tcg", err, got)
		}
	} else {
		f.Close()
		if got != "kvm" && got != "tcg" {
			t.Errorf("Accel() = %q", got)
		}
	}
}
