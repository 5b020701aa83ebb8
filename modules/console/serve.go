package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// The status server faces the farm's network, where anyone can connect. A
// client that sends its request slowly (slowloris), never reads the answer
// or keeps idle connections open must not hold the server's memory or its
// connections: every phase has a deadline, and the connections served at
// once are capped. Variables for the tests.
var (
	readHeaderTimeout = 5 * time.Second  // request line and headers
	readTimeout       = 30 * time.Second // the whole request, body included (a deployment is a few KiB)
	writeTimeout      = 30 * time.Second // the whole answer (a followed log: see stream)
	idleTimeout       = 60 * time.Second // between requests on a kept-alive connection
	maxConns          = 64               // connections served at once; one more gets 503 and is closed
	maxHeaderBytes    = 16 << 10

	// A followed log (GET …/logs/W?follow=1) is an answer that lasts as long
	// as the person watching it: it has no overall read or write deadline,
	// but each write must get through within streamWrite (a client that
	// stopped reading is cut off), and at most maxStreams run at once so
	// that they cannot take every connection.
	streamWrite = 30 * time.Second
	maxStreams  = 8
)

// newServer is the status server: h behind the deadlines above.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// listen opens the status endpoint's listener on addr, kept to the
// network interface iface when not "" (SO_BINDTODEVICE: only connections
// that arrive on that NIC are accepted, whatever its addresses), with at
// most maxConns connections served at once.
func listen(addr, iface string) (net.Listener, error) {
	lc := net.ListenConfig{}
	if iface != "" {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = unix.BindToDevice(int(fd), iface) }); cerr != nil {
				return cerr
			}
			if err != nil {
				return fmt.Errorf("binding to %s: %w", iface, err)
			}
			return nil
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &capped{Listener: ln, slots: make(chan struct{}, maxConns)}, nil
}

// capped serves at most cap(slots) connections at once. One more is
// answered 503 and closed at once rather than left waiting: its client
// learns that the node is busy, and a flood of connections costs an accept
// and a write each.
type capped struct {
	net.Listener
	slots chan struct{}
}

const busy = "the node's status server is serving as many connections as it takes; try again\n"

func (l *capped) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			// A few bytes into a new socket's empty send buffer: this does
			// not block, and the deadline makes sure of it.
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(busy), busy))
			c.Close()
		}
	}
}

// slotConn gives its slot back when closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}

// isStream says whether r asks for a followed log.
func isStream(r *http.Request) bool {
	f := r.URL.Query().Get("follow")
	return strings.Contains(r.URL.Path, "/logs/") && (f == "1" || f == "true")
}

// streams lets at most maxStreams followed logs run at once, each without
// the server's overall deadlines but with one on every write.
type streams struct{ slots chan struct{} }

func newStreams() *streams { return &streams{slots: make(chan struct{}, maxStreams)} }

// serve runs next for a followed log, or answers 503 when maxStreams run.
func (s *streams) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		unavailable(w, fmt.Sprintf("%d followed logs are running on this node, the most it serves at once; try again later", maxStreams))
		return
	}
	rc := http.NewResponseController(w)
	// The request was read; its read deadline would end the answer (the
	// server cancels a request whose connection's read fails).
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(streamWrite))
	next.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc}, r)
}

// progressWriter gives each write of a stream streamWrite to get through.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.rc.SetWriteDeadline(time.Now().Add(streamWrite))
	return p.ResponseWriter.Write(b)
}

func (p *progressWriter) Flush() {
	p.rc.SetWriteDeadline(time.Now().Add(streamWrite))
	p.rc.Flush()
}

func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// endpoint is the status endpoint as gridnode.status asks for it.
type endpoint struct {
	at    config.StatusAddr
	srv   *http.Server
	log   *slog.Logger
	ln    net.Listener
	iface string // the NIC the listener is bound to (mgmt)
	// published: the console fact is out (readiness).
	published bool
}

// follow, for mgmt, opens the listener on the management NIC the network
// fact names, and again on another when that changes.
func (e *endpoint) follow(dir string) {
	if !e.at.Mgmt {
		return
	}
	var n fact.Network
	if fact.Folder(dir).Read(fact.NameNetwork, &n) != nil || n.Iface == "" || (e.ln != nil && n.Iface == e.iface) {
		return // no management NIC yet, or no change
	}
	ln, err := listen(e.at.Addr, n.Iface)
	if err != nil {
		e.log.Error(fmt.Sprintf("status endpoint on %s: %v", e.where(n.Iface), err))
		return
	}
	if e.ln != nil {
		e.ln.Close() // what was accepted on the old NIC finishes
		e.log.Info("the management NIC changed; the status endpoint moved", "from", e.iface, "to", n.Iface)
	}
	e.start(ln, n.Iface)
}

// start serves on ln and, the first time, publishes the console fact.
func (e *endpoint) start(ln net.Listener, iface string) {
	e.ln, e.iface = ln, iface
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			e.log.Error("status endpoint stopped", "err", err)
		}
	}()
	e.log.Info("status endpoint listening on " + e.where(iface))
	if !e.published {
		if err := fact.Write(fact.NameConsole, fact.Console{StatusAddr: ln.Addr().String()}); err != nil {
			e.log.Error("publishing the console fact", "err", err)
			return
		}
		e.published = true
	}
}

func (e *endpoint) where(iface string) string {
	if e.at.Mgmt {
		return e.at.Addr + " on the management NIC " + iface + " only"
	}
	return e.at.Addr
}
