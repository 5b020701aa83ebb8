package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// AccelEnv overrides accelerator detection: GRIDNODE_ACCEL=kvm or tcg.
const AccelEnv = "GRIDNODE_ACCEL"

// kvmProbeDeadline is how long the KVM probe may take. On a host where KVM
// works, SeaBIOS reaches the probe's boot sector in well under a second. On
// hosts where /dev/kvm opens but KVM is broken or nested badly (like the
// machine this was written on: 3-4 s for the boot sector, a Linux kernel
// never printing a line) KVM is slower than TCG, so we treat it as absent.
const kvmProbeDeadline = 2 * time.Second

var (
	accelOnce sync.Once
	accelName string
)

// Accel returns the accelerator VMs use: $GRIDNODE_ACCEL when set, else
// "kvm" if a probe VM runs under KVM promptly, else "tcg". The probe runs
// once per process (about 0.3 s where KVM works, 2 s where it hangs).
func Accel() string {
	if a := os.Getenv(AccelEnv); a == "kvm" || a == "tcg" {
		return a
	}
	accelOnce.Do(func() {
		accelName = "tcg"
		if probeKVM("qemu-system-x86_64", kvmProbeDeadline) {
			accelName = "kvm"
		}
	})
	return accelName
}

// accelArgs returns the QEMU arguments for accel. Under TCG, -cpu max gives
// the guest every feature TCG emulates, including the hypervisor CPUID bit,
// so the node knows it runs in a VM.
func accelArgs(accel string) []string {
	if accel == "kvm" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
}

// probeBootSector is a boot sector that writes 0x21 to the isa-debug-exit
// port 0xf4, which ends QEMU with status (0x21<<1)|1 = 67.
//
//	mov al, 0x21 ; out 0xf4, al ; hlt ; jmp $-1
var probeBootSector = func() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xb0, 0x21, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd})
	b[510], b[511] = 0x55, 0xaa
	return b
}()

const probeExitStatus = 67

// probeKVM reports whether a VM boots under KVM within deadline: opening
// /dev/kvm is not enough, as it can open and still not run guests.
func probeKVM(binary string, deadline time.Duration) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	dir, err := os.MkdirTemp("", "gridnode-kvm-probe")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "probe.img")
	if err := os.WriteFile(img, probeBootSector, 0o644); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary,
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "32",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file="+img+",format=raw,if=ide", "-boot", "c")
	err = cmd.Run()
	var exit *exec.ExitError
	return ctx.Err() == nil && errors.As(err, &exit) && exit.ExitCode() == probeExitStatus
}
