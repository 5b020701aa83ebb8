// Package fact publishes and reads what node modules learned, as small JSON
// files under /run/gridnode. A module is ready once it has published its
// fact (ReadyOnPublish, notify.go); a person debugging a node reads the same
// files.
package fact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDir is where facts live on a node.
const DefaultDir = "/run/gridnode"

// DirEnv is the environment variable that names the fact folder of a
// module process; the supervisor sets it for every process it starts.
const DirEnv = "GRIDNODE_RUN"

// Folder is a fact folder. PID 1 passes its folder to what it runs in
// process (the supervisor, coldplug); module processes find it in
// $GRIDNODE_RUN (Dir), which PID 1 sets for them.
type Folder string

// Dir returns the fact folder of this process: $GRIDNODE_RUN when set
// (tests, and modules started by a PID 1 under test), else DefaultDir.
func Dir() string { return string(Default()) }

// Default is the fact folder of this process (see Dir).
func Default() Folder {
	if d := os.Getenv(DirEnv); d != "" {
		return Folder(d)
	}
	return DefaultDir
}

// Path is the file that holds the fact called name.
func (d Folder) Path(name string) string { return filepath.Join(string(d), name+".json") }

// Write publishes v as the fact name, atomically: readers see the old or the
// new fact, never half of one. The first publication of the fact named in
// ReadyOnPublish also reports this process ready.
func (d Folder) Write(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("fact %s: %w", name, err)
	}
	if err := WriteFile(d.Path(name), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return published(name)
}

// Path is the file that holds the fact called name in Dir.
func Path(name string) string { return Default().Path(name) }

// Write publishes v as the fact name in Dir.
func Write(name string, v any) error { return Default().Write(name, v) }

// Read decodes the fact name in Dir into v.
func Read(name string, v any) error { return Default().Read(name, v) }

// Exists says whether the fact name has been published in Dir.
func Exists(name string) bool { return Default().Exists(name) }

// Wait waits for the fact name in Dir (see Folder.Wait).
func Wait(ctx context.Context, name string, v any) error { return Default().Wait(ctx, name, v) }

// Watch watches Dir (see Folder.Watch).
func Watch() (landed <-chan struct{}, stop func()) { return Default().Watch() }

// WriteFile writes data to path through a temporary file and a rename, and
// syncs both the file and its folder, so a power cut leaves the old content or
// the new one.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Read decodes the fact name into v. A missing fact is fs.ErrNotExist.
func (d Folder) Read(name string, v any) error {
	b, err := os.ReadFile(d.Path(name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("fact %s: %w", name, err)
	}
	return nil
}

// Exists says whether the fact name has been published.
func (d Folder) Exists(name string) bool {
	_, err := os.Stat(d.Path(name))
	return err == nil
}

// Wait blocks until the fact name exists and decodes it into v (which may be
// nil), or until ctx is done. It wakes when a fact lands in the folder, so
// a module waiting for another's fact goes on at once, and looks again
// every 100 ms besides.
func (d Folder) Wait(ctx context.Context, name string, v any) error {
	landed, stop := d.Watch()
	defer stop()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var err error
		if v == nil {
			if !d.Exists(name) {
				err = fs.ErrNotExist
			}
		} else {
			err = d.Read(name, v)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for fact %s: %w", name, ctx.Err())
		case <-t.C:
		case <-landed:
		}
	}
}

// Watch reports on the returned channel (without blocking: events that
// come while one is pending merge into it) when a fact file lands in the
// folder. stop ends the watch. Where the folder cannot be watched the
// channel never fires, and callers poll as before.
func (d Folder) Watch() (landed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	dir := string(d)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ch, func() {}
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return ch, func() {}
	}
	// WriteFile renames a finished temporary file into place.
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return ch, func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close wakes Read
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() { f.Close(); <-done }
}
