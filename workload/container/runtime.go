package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultHelper is where the image builder puts the container helper.
const DefaultHelper = "/bin/gridnode-container"

// Runtime runs containers from bundle folders under Dir with the helper.
type Runtime struct {
	Helper string // the gridnode-container program
	Dir    string // one bundle folder per container, on the cache disk

	mu       sync.Mutex
	children map[string]*child // helpers this process started
	sealed   *os.File          // the helper, sealed in memory (sealedCopy)
}

// child is a helper this process started: done closes once it is reaped
// and exit holds how the container ended.
type child struct {
	done chan struct{}
	exit Exit
}

// New returns a runtime keeping its bundles under dir.
func New(helper, dir string) *Runtime {
	return &Runtime{Helper: helper, Dir: dir, children: map[string]*child{}}
}

// Bundle is the folder of container id.
func (r *Runtime) Bundle(id string) string { return filepath.Join(r.Dir, id) }

// Create writes the container's bundle and mounts its root file system,
// with a fresh writable layer; nothing runs until Start. A container
// created before is replaced, unless it is running.
func (r *Runtime) Create(c Config) error {
	s, err := Spec(c)
	if err != nil {
		return err
	}
	b := r.Bundle(c.ID)
	if r.running(c.ID) {
		return fmt.Errorf("container %s: already running; delete it first", c.ID)
	}
	if err := os.MkdirAll(b, 0o711); err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	if err := WriteJSON(filepath.Join(b, ConfigFile), s); err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	l, err := LayoutOf(b, s)
	if err != nil {
		return err
	}
	l.Unmount() // a container created before
	if err := l.Mount(); err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	return nil
}

// Start starts the container and returns the pid of its init on the node
// once it runs. Its stdout and stderr go to out, or to the bundle's log
// file when out is nil (a container that outlives its starter). The helper
// runs in a session of its own: stopping the caller's process group leaves
// the container running.
func (r *Runtime) Start(ctx context.Context, id string, out io.Writer) (int, error) {
	b := r.Bundle(id)
	if r.running(id) {
		return 0, fmt.Errorf("container %s: already running", id)
	}
	os.Remove(filepath.Join(b, ExitFile))
	log, err := os.OpenFile(filepath.Join(b, "helper.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", id, err)
	}
	defer log.Close()
	exe, err := r.exe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, "run", b)
	cmd.Args[0] = r.Helper
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	copied := make(chan struct{})
	var pw *os.File // the output pipe's write end, the helper's from its start
	if out != nil {
		var pr *os.File
		pr, pw, err = os.Pipe()
		if err != nil {
			return 0, err
		}
		defer pw.Close()
		cmd.ExtraFiles = []*os.File{pw}
		cmd.Env = append(os.Environ(), OutputEnv+"=3")
		go func() { io.Copy(out, pr); pr.Close(); close(copied) }()
	} else {
		close(copied)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("container %s: starting the helper %s: %w", id, r.Helper, err)
	}
	// Only the helper writes output now: its end alone keeps the copy
	// going, and a helper that fails early ends it (below, Wait waits for
	// the copy, which would otherwise wait for this function to return).
	if pw != nil {
		pw.Close()
	}
	ch := &child{done: make(chan struct{})}
	r.mu.Lock()
	r.children[id] = ch
	r.mu.Unlock()
	line := make(chan []byte, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadBytes('\n')
		line <- l
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		<-copied // the output is complete before anyone learns the exit
		ch.exit = r.readExit(id)
		close(ch.done)
	}()
	select {
	case l := <-line:
		var st Started
		if json.Unmarshal(l, &st) == nil && st.Pid > 0 {
			return st.Pid, nil
		}
	case <-ctx.Done():
		r.Signal(id, unix.SIGKILL)
		return 0, fmt.Errorf("container %s: %w", id, ctx.Err())
	}
	ex, _ := r.Wait(context.Background(), id)
	msg := ex.Error
	if msg == "" {
		l, _ := os.ReadFile(filepath.Join(b, "helper.log"))
		msg = strings.TrimSpace(string(l))
	}
	return 0, fmt.Errorf("container %s did not start: %s", id, msg)
}

// exe is the path to execute the helper through: its sealed copy, made on
// first use and kept for the life of this process.
func (r *Runtime) exe() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed == nil {
		f, err := sealedCopy(r.Helper)
		if err != nil {
			return "", err
		}
		r.sealed = f
	}
	return fmt.Sprintf("/proc/self/fd/%d", r.sealed.Fd()), nil
}

// Wait waits until the container has ended and says how. It works for a
// container started by this process and for one a previous process (a
// workloads module before its restart) started.
func (r *Runtime) Wait(ctx context.Context, id string) (Exit, error) {
	r.mu.Lock()
	ch := r.children[id]
	r.mu.Unlock()
	if ch != nil {
		select {
		case <-ch.done:
			return ch.exit, nil
		case <-ctx.Done():
			return Exit{}, ctx.Err()
		}
	}
	if pid := r.shimPid(id); pid > 0 {
		if err := waitExit(ctx, pid); err != nil {
			return Exit{}, err
		}
	}
	return r.readExit(id), nil
}

// readExit reads the exit the helper recorded for container id.
func (r *Runtime) readExit(id string) Exit {
	var ex Exit
	data, err := os.ReadFile(filepath.Join(r.Bundle(id), ExitFile))
	if err != nil || json.Unmarshal(data, &ex) != nil {
		return Exit{Code: -1, Error: "the container helper ended without recording an exit (killed?); delete the container", At: time.Now()}
	}
	return ex
}

// waitExit waits for process pid, not a child of ours, to exit.
func waitExit(ctx context.Context, pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 500)
		if n > 0 {
			return nil
		}
		if err != nil && err != unix.EINTR {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// shimPid is the pid of the helper running container id, or 0.
func (r *Runtime) shimPid(id string) int {
	b, err := os.ReadFile(filepath.Join(r.Bundle(id), ShimPid))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !IsShim(pid, r.Bundle(id)) {
		return 0
	}
	return pid
}

// running says whether a helper runs container id.
func (r *Runtime) running(id string) bool { return r.shimPid(id) > 0 }

// Signal sends sig to the container's init.
func (r *Runtime) Signal(id string, sig syscall.Signal) error {
	_, err := r.helper("kill", r.Bundle(id), strconv.Itoa(int(sig)))
	return err
}

// Stats returns the container's use of its limits.
func (r *Runtime) Stats(id string) (Stats, error) {
	var st Stats
	out, err := r.helper("stats", r.Bundle(id))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(out, &st)
}

// Delete kills the container if it runs and removes everything it had on
// the node: processes, cgroup, mounts, writable layer, bundle.
func (r *Runtime) Delete(id string) error {
	b := r.Bundle(id)
	if _, err := os.Stat(filepath.Join(b, ConfigFile)); errors.Is(err, os.ErrNotExist) {
		return os.RemoveAll(b)
	}
	if _, err := r.helper("delete", b); err != nil {
		return err
	}
	r.mu.Lock()
	ch := r.children[id]
	delete(r.children, id)
	r.mu.Unlock()
	if ch != nil {
		<-ch.done
	}
	if err := os.RemoveAll(b); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return nil
}

// List returns the ids of the containers that have a bundle.
func (r *Runtime) List() ([]string, error) {
	ents, err := os.ReadDir(r.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var ids []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(r.Dir, e.Name(), ConfigFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, err
}

// SetParent creates or updates the cgroup all workloads run under.
func (r *Runtime) SetParent(p Parent) error {
	b, _ := json.Marshal(p)
	_, err := r.helper("parent", string(b))
	return err
}

// helper runs a short helper command and returns its stdout.
func (r *Runtime) helper(args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(r.Helper, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("container helper %s: %w", r.Helper, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(r.Helper), args[0], err, strings.TrimSpace(errb.String()))
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("%s %s: no answer in a minute", filepath.Base(r.Helper), args[0])
	}
	return out.Bytes(), nil
}
