// Package console shows what the node is doing: a status screen on tty1, a
// compact status block on the serial console (stdout, which the supervisor
// tags and forwards), both refreshed when a fact changes, and a read-only
// HTTP endpoint for the farm's network.
//
// The screen shows the node key, farm, twin and node id, the registrar and
// its last error in words, the addresses (or why there is none), capacity,
// the cache disk and each module's state and restarts. The serial block is a
// few lines starting with "status: ", e.g.
//
//	status: registrar=registered twin=1 node=1 farm=1 url=http://10.0.2.2:8080
//
// HTTP (cfg.Status: ":9100" by default, HOST:PORT, or mgmt:PORT for the
// management NIC only; every request within deadlines and a cap on
// connections, serve.go):
//
//	/status     every fact in /run/gridnode/*.json, merged under its name
//	            (never the secret folder)
//	/metrics    Prometheus text: capacity, CPUs, module restarts and
//	            readiness, uptime reports sent/failed, machine uptime
//	/log/NAME   the last lines a module logged (/run/gridnode/log/NAME.log)
//	/api/v1/deployments[/...]  forwarded as it came to the workloads
//	            module's socket, which answers signed requests only
//
// Fact published once the endpoint listens (readiness), or at once with
// no address when gridnode.status is not valid (then nothing is served):
//
//	console {"status_addr": "[::]:9100"}
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// Where the screen goes, and how often; variables for the tests.
var (
	ttyPath               = "/dev/tty1"
	serialEvery           = 2 * time.Second  // the serial block is printed at most this often
	redrawEvery           = 30 * time.Second // tty1 is redrawn at least this often (kernel messages scribble on it)
	settle                = 100 * time.Millisecond
	stdout      io.Writer = os.Stdout
	clearScreen           = "\x1b[H\x1b[2J\x1b[3J"
)

// Run serves the status endpoint and keeps the screens current until ctx is
// done.
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	dir := fact.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("console: fact folder %s: %w", dir, err)
	}
	srv := newServer(Handler(dir))
	defer srv.Close()
	at, err := config.ParseStatus(cfg.Status)
	ep := &endpoint{at: at, srv: srv, log: log}
	switch {
	case err != nil:
		// Not served rather than served where it was not asked for: the
		// setting may be there to keep it off a network.
		log.Error(fmt.Sprintf("%v; the status endpoint is not served until it is fixed", err))
		if err := fact.Write(fact.NameConsole, fact.Console{}); err != nil {
			return fmt.Errorf("console: publishing the console fact: %w", err)
		}
	case at.Mgmt:
		log.Info("the status endpoint waits for the management NIC", "port", at.Port)
		ep.follow(dir)
	default:
		ln, err := listen(at.Addr, "")
		if err != nil {
			return fmt.Errorf("console: status endpoint on %s: %w (is another program using the port? set gridnode.status= to move it)", at.Addr, err)
		}
		ep.start(ln, "")
		if !ep.published {
			return errors.New("console: the console fact could not be published")
		}
	}

	changes := make(chan struct{}, 1)
	stop, err := watch(dir, changes)
	if err != nil {
		// Without inotify the screen still refreshes, just on a timer.
		log.Warn("cannot watch the fact folder; refreshing every 2s instead", "dir", dir, "err", err)
		redrawEvery = serialEvery
	} else {
		defer stop()
	}
	s := &screens{log: log}
	s.refresh(dir)
	tick := time.NewTicker(redrawEvery)
	defer tick.Stop()
	var serialTimer <-chan time.Time
	for {
		if serialTimer == nil {
			if wait := s.flushSerial(); wait > 0 {
				serialTimer = time.After(wait)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
			// Facts are often written in bursts (a module and then the
			// supervisor): let them land before drawing.
			if backoff.Sleep(ctx, settle) != nil {
				return nil
			}
			s.refresh(dir)
			ep.follow(dir)
		case <-tick.C:
			s.refresh(dir)
			ep.follow(dir)
		case <-serialTimer:
			serialTimer = nil
		}
	}
}

// screens holds what was last shown, to draw only what changed.
type screens struct {
	log        *slog.Logger
	lastTTY    string
	ttyFailed  bool
	pending    string // serial block not printed yet
	lastSerial string
	printedAt  time.Time
}

func (s *screens) refresh(dir string) {
	snap := load(dir)
	s.drawTTY(strings.Join(snap.lines(), "\r\n"))
	if b := strings.Join(snap.serial(), "\n") + "\n"; b != s.lastSerial {
		s.pending = b
	} else {
		s.pending = ""
	}
}

// flushSerial prints the pending serial block unless one was printed less
// than serialEvery ago; it returns how long to wait before trying again.
func (s *screens) flushSerial() time.Duration {
	if s.pending == "" {
		return 0
	}
	if wait := serialEvery - time.Since(s.printedAt); wait > 0 {
		return wait
	}
	io.WriteString(stdout, s.pending)
	s.lastSerial, s.pending, s.printedAt = s.pending, "", time.Now()
	return 0
}

// drawTTY clears tty1 and draws the screen. The terminal is opened for each
// draw, so a console that comes and goes (or never exists, on a headless
// machine) costs nothing.
func (s *screens) drawTTY(screen string) {
	f, err := os.OpenFile(ttyPath, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		if !s.ttyFailed {
			s.log.Info("no status screen on "+ttyPath, "err", err)
			s.ttyFailed = true
		}
		return
	}
	defer f.Close()
	s.ttyFailed = false
	if _, err := io.WriteString(f, clearScreen+screen+"\r\n"); err != nil {
		s.log.Debug("writing the status screen", "tty", ttyPath, "err", err)
	}
	s.lastTTY = screen
}

// watch sends on changes (without blocking) whenever a file in dir is
// written, renamed into place or removed.
func watch(dir string, changes chan<- struct{}) (stop func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// A non-blocking fd goes through Go's poller, so Close unblocks Read.
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 64*1024)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case changes <- struct{}{}:
			default:
			}
		}
	}()
	return func() { f.Close() }, nil
}
