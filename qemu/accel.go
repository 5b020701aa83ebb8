package qemu

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// ProbeKernelEnv names a Linux kernel the KVM probe boots; without it the
// probe uses the kernel the first VM boots, else /boot/vmlinuz-*.
const ProbeKernelEnv = "GRIDNODE_PROBE_KERNEL"

// Accel returns the accelerator VMs use: $GRIDNODE_ACCEL when set, else
// "kvm" if probe VMs run under KVM promptly, else "tcg". The probe runs once
// per process.
func Accel() string { return accelFor("") }

// accelFor is Accel with a kernel the probe may boot. Two probes: a boot
// sector that exits QEMU at once, and a Linux kernel that must print its
// banner. The second is needed because on some hosts /dev/kvm runs real-mode
// code and then hangs as the kernel leaves its decompressor; without a
// kernel to try, KVM is not trusted.
func accelFor(kernel string) string {
	if a := os.Getenv(AccelEnv); a == "kvm" || a == "tcg" {
		return a
	}
	accelOnce.Do(func() {
		accelName = "tcg"
		k := os.Getenv(ProbeKernelEnv)
		if k == "" {
			k = kernel
		}
		if k == "" {
			if l, _ := filepath.Glob("/boot/vmlinuz-*"); len(l) > 0 {
				k = l[len(l)-1]
			}
		}
		if k != "" && probeKVM("qemu-system-x86_64", kvmProbeDeadline) &&
			probeKVMKernel("qemu-system-x86_64", k, kvmProbeDeadline) {
			accelName = "kvm"
		}
	})
	return accelName
}

// probeKVMKernel reports whether kernel prints its banner under KVM within
// deadline (TCG takes a few seconds; KVM well under one).
func probeKVMKernel(binary, kernel string, deadline time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256",
		"-serial", "stdio", "-kernel", kernel,
		"-append", "earlyprintk=ttyS0 console=ttyS0 panic=-1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false
	}
	if err := cmd.Start(); err != nil {
		return false
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Linux version") {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		return ok
	case <-ctx.Done():
		return false
	}
}

// accelArgs returns the QEMU arguments for accel and the CPU model cpu.
// Without a model, TCG gets max: every feature TCG emulates, including the
// hypervisor CPUID bit, so the node knows it runs in a VM; KVM gets host.
func accelArgs(accel, cpu string) []string {
	if accel == "kvm" {
		return []string{"-accel", "kvm", "-cpu", cmp.Or(cpu, "host")}
	}
	return []string{"-accel", "tcg,thread=multi", "-cpu", cmp.Or(cpu, "max")}
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
