// Package qemu starts a gridnode image in QEMU and talks to its serial
// lines: the test bench of `gridnode run`, `make run` and the tests in tests/.
//
// A VM boots a kernel directly, or from a CD-ROM, a USB stick, a disk or the
// network (PXE), with SeaBIOS or OVMF. It runs under KVM when KVM really
// works and under TCG otherwise (see Accel). Its console (ttyS0) is captured
// to Dir/console.log and kept in memory, where Expect finds lines in it:
//
//	vm, err := qemu.Start(ctx, qemu.Options{
//		Boot:     qemu.KernelBoot("out/vmlinuz", "out/initramfs.cpio.zst", "console=ttyS0"),
//		Forwards: []qemu.Forward{{Guest: 9100}},
//		Dir:      t.TempDir(),
//	})
//	if err != nil { ... }
//	defer vm.Kill()
//	m, err := vm.Expect(ctx, regexp.MustCompile(`node id (\d+)`), 2*time.Minute)
//	// m.Groups[1] is the id; on failure err shows the last 40 console lines.
//	resp, err := http.Get("http://" + vm.HostAddr(9100) + "/")
//
// The guest reaches services on the host's loopback as 10.0.2.2 (QEMU user
// networking); it must never be pointed at any other address.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// UEFI firmware files of Debian's ovmf package.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE.fd" // read-only code flash (2 MiB layout)
	OVMFVars = "/usr/share/OVMF/OVMF_VARS.fd" // variable store template matching OVMFCode
	OVMFFull = "/usr/share/ovmf/OVMF.fd"      // code and variables in one image, for -bios
)

// startTimeout bounds how long QEMU may take to connect its serial lines and
// QMP: it does so while starting, before the guest runs.
const startTimeout = 30 * time.Second

// VM is a running QEMU.
type VM struct {
	Dir     string   // holds console.log, qemu.log, created disks, UEFI variables
	LogPath string   // the console (ttyS0) log
	Accel   string   // "kvm" or "tcg"
	Args    []string // the QEMU command line, binary first

	cmd     *exec.Cmd
	ports   []*Port
	conns   []net.Conn
	qmp     *qmp
	fwd     map[Forward]int // guest port (Host field zero) → host port
	stderr  *tailBuffer
	exited  chan struct{} // closed when the QEMU process has exited
	done    chan struct{} // closed when, also, the transcripts are complete
	waitErr error
}

// Start starts QEMU with o and returns once QEMU runs and its serial lines
// are connected. The VM is killed when ctx is done.
func Start(ctx context.Context, o Options) (*VM, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	accel := o.Accel
	if accel == "" {
		accel = accelFor(o.Boot.Kernel)
	}
	if accel != "kvm" && accel != "tcg" {
		return nil, fmt.Errorf("qemu: accel %q: want kvm or tcg", accel)
	}

	vm := &VM{Accel: accel, fwd: map[Forward]int{}, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{}), done: make(chan struct{})}
	ownDir := false
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "gridnode-vm")
		if err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		o.Dir, ownDir = d, true
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	vm.Dir = o.Dir
	vm.LogPath = filepath.Join(o.Dir, "console.log")

	// Unix socket paths are limited to 108 bytes, and test folders are
	// long: sockets live in a short folder of their own.
	sockDir, err := os.MkdirTemp("", "gnq")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	var cleanups []func()
	cleanups = append(cleanups, func() { os.RemoveAll(sockDir) })
	if ownDir {
		cleanups = append(cleanups, func() { os.RemoveAll(o.Dir) })
	}
	cleanup := func() {
		for _, f := range cleanups {
			f()
		}
	}
	fail := func(err error) (*VM, error) {
		cleanup()
		return nil, err
	}

	b := &argBuilder{o: &o, vm: vm, sockDir: sockDir}
	args, err := b.build()
	if err != nil {
		return fail(err)
	}
	vm.Args = append([]string{o.Binary}, args...)

	// QEMU connects to us as a client: listening first means nothing the
	// guest prints is lost, as QEMU connects before the guest starts.
	var lns []*net.UnixListener
	for _, path := range b.sockets {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fail(fmt.Errorf("qemu: %w", err))
		}
		lns = append(lns, ln)
	}
	closeListeners := func() {
		for _, l := range lns {
			l.Close()
		}
	}

	qlog, err := os.Create(filepath.Join(o.Dir, "qemu.log"))
	if err != nil {
		closeListeners()
		return fail(fmt.Errorf("qemu: %w", err))
	}
	cleanups = append(cleanups, func() { qlog.Close() })

	cmd := exec.CommandContext(ctx, o.Binary, args...)
	cmd.WaitDelay = 5 * time.Second
	stderr := []io.Writer{vm.stderr, qlog}
	if o.Stderr != nil {
		stderr = append(stderr, o.Stderr)
	}
	cmd.Stderr = io.MultiWriter(stderr...)
	if o.Interactive {
		cmd.Stdin, cmd.Stdout = o.Stdin, o.Stdout
		if cmd.Stdin == nil {
			cmd.Stdin = os.Stdin
		}
		if cmd.Stdout == nil {
			cmd.Stdout = os.Stdout
		}
	} else {
		cmd.Stdout = cmd.Stderr
	}
	vm.cmd = cmd
	if err := cmd.Start(); err != nil {
		closeListeners()
		return fail(fmt.Errorf("qemu: starting %s: %w (install Debian package qemu-system-x86)", o.Binary, err))
	}

	started := make(chan struct{})
	var pumps sync.WaitGroup
	go func() {
		err := cmd.Wait()
		close(vm.exited)
		closeListeners()
		<-started
		pumps.Wait()
		msg := "VM exited"
		if err != nil {
			msg += " (" + err.Error() + ")"
			vm.waitErr = fmt.Errorf("qemu: %w%s", err, vm.stderrTail())
		}
		for _, p := range vm.ports {
			p.close(msg)
		}
		for _, c := range vm.conns {
			c.Close()
		}
		cleanup()
		close(vm.done)
	}()
	abort := func(err error) (*VM, error) {
		cmd.Process.Kill()
		close(started)
		<-vm.done
		return nil, err
	}

	deadline := time.Now().Add(startTimeout)
	for i, ln := range lns {
		ln.SetDeadline(deadline)
		conn, err := ln.Accept()
		if err != nil {
			return abort(vm.startError(fmt.Sprintf("connecting %s", b.socketNames[i]), err))
		}
		vm.conns = append(vm.conns, conn)
	}
	// The listeners' sockets are no longer needed; QEMU connected.
	closeListeners()

	for i, name := range b.portNames {
		conn := vm.conns[i]
		p := newPort(name, conn)
		logPath := filepath.Join(o.Dir, name+".log")
		if i == 0 {
			logPath = vm.LogPath
		}
		log, err := os.Create(logPath)
		if err != nil {
			return abort(fmt.Errorf("qemu: %w", err))
		}
		var tee io.Writer
		if i == 0 {
			tee = o.ConsoleOut
		}
		vm.ports = append(vm.ports, p)
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			defer log.Close()
			p.pump(conn, log, tee)
		}()
	}
	if b.qmpIndex >= 0 {
		q, err := newQMP(vm.conns[b.qmpIndex], time.Until(deadline))
		if err != nil {
			return abort(vm.startError("qmp", err))
		}
		vm.qmp = q
	}
	close(started)
	return vm, nil
}

func (vm *VM) startError(what string, err error) error {
	select {
	case <-vm.exited:
	case <-time.After(time.Second):
	}
	select {
	case <-vm.exited:
		return fmt.Errorf("qemu: exited while starting (%v)%s", vm.cmd.ProcessState, vm.stderrTail())
	default:
	}
	return fmt.Errorf("qemu: %s: %w%s", what, err, vm.stderrTail())
}

func (vm *VM) stderrTail() string {
	s := strings.TrimSpace(vm.stderr.String())
	if s == "" {
		return ""
	}
	return "; qemu said:\n" + s
}

// Port returns serial line i: 0 is the console ttyS0, 1.. are the extra
// serials. It is nil in interactive mode or when there is no such line.
func (vm *VM) Port(i int) *Port {
	if i < 0 || i >= len(vm.ports) {
		return nil
	}
	return vm.ports[i]
}

// Console returns the console transcript so far.
func (vm *VM) Console() string {
	if p := vm.Port(0); p != nil {
		return p.Transcript()
	}
	return ""
}

// Expect waits for a console line matching re; see Port.Expect.
func (vm *VM) Expect(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (Match, error) {
	p := vm.Port(0)
	if p == nil {
		return Match{}, errors.New("qemu: the console is not captured (interactive mode)")
	}
	return p.Expect(ctx, re, timeout)
}

// ExpectString waits for a console line containing s and returns it.
func (vm *VM) ExpectString(ctx context.Context, s string, timeout time.Duration) (string, error) {
	p := vm.Port(0)
	if p == nil {
		return "", errors.New("qemu: the console is not captured (interactive mode)")
	}
	return p.ExpectString(ctx, s, timeout)
}

// Write sends data to serial line i (0 is the console).
func (vm *VM) Write(i int, data string) error {
	p := vm.Port(i)
	if p == nil {
		return fmt.Errorf("qemu: no serial line %d (the VM has %d)", i, len(vm.ports))
	}
	_, err := p.Write([]byte(data))
	return err
}

// HostPort returns the host port (on 127.0.0.1) forwarded to TCP port guest,
// or 0 when there is no such forward.
func (vm *VM) HostPort(guest int) int { return vm.fwd[Forward{Guest: guest}] }

// HostPortUDP is HostPort for a UDP forward.
func (vm *VM) HostPortUDP(guest int) int { return vm.fwd[Forward{Guest: guest, UDP: true}] }

// HostAddr returns "127.0.0.1:PORT" for the TCP forward of guest.
func (vm *VM) HostAddr(guest int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.HostPort(guest)))
}

// Done is closed when QEMU has exited and the transcripts are complete.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Wait waits for QEMU to exit. It returns nil when QEMU exited with status
// 0 (the guest powered off, or rebooted without AllowReboot), else an error
// that includes QEMU's last messages.
func (vm *VM) Wait() error {
	<-vm.done
	return vm.waitErr
}

// ExitCode is QEMU's exit status, -1 while it runs or when it was killed.
func (vm *VM) ExitCode() int {
	select {
	case <-vm.done:
		return vm.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Kill stops QEMU at once and waits for it. Safe to call more than once and
// after the VM exited.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
		return
	default:
	}
	vm.cmd.Process.Kill()
	<-vm.done
}

// Shutdown presses the ACPI power button and waits for the guest to power
// off; when ctx is done first, it kills QEMU. It returns nil when the guest
// powered off by itself.
func (vm *VM) Shutdown(ctx context.Context) error {
	if err := vm.Powerdown(ctx); err != nil {
		vm.Kill()
		return fmt.Errorf("qemu: shutdown: %w; killed QEMU", err)
	}
	select {
	case <-vm.done:
		return vm.waitErr
	case <-ctx.Done():
		vm.Kill()
		return fmt.Errorf("qemu: shutdown: guest did not power off (%w); killed QEMU", context.Cause(ctx))
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.b, nil))
}
