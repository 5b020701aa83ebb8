package console

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/fact"
)

// short sets the server's limits for one test and puts them back after.
func short(t *testing.T, header, read, write, idle, stream time.Duration, conns, streams int) {
	t.Helper()
	old := []any{readHeaderTimeout, readTimeout, writeTimeout, idleTimeout, streamWrite, maxConns, maxStreams}
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout, streamWrite, maxConns, maxStreams = header, read, write, idle, stream, conns, streams
	t.Cleanup(func() {
		readHeaderTimeout, readTimeout, writeTimeout, idleTimeout = old[0].(time.Duration), old[1].(time.Duration), old[2].(time.Duration), old[3].(time.Duration)
		streamWrite, maxConns, maxStreams = old[4].(time.Duration), old[5].(int), old[6].(int)
	})
}

// serveFixture runs the real status server (newServer on listen) on the
// loopback for the fact folder dir and returns its address.
func serveFixture(t *testing.T, dir string) string {
	t.Helper()
	ln, err := listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(Handler(dir))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedWithin reads c until the server closes it and says how long that
// took, failing the test after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s", limit)
	}
	return time.Since(start)
}

// A client that sends its headers a byte at a time (slowloris), one that
// sends its body as slowly, and an idle kept-alive connection are each cut
// off at their deadline.
func TestSlowClientsHeldOff(t *testing.T) {
	short(t, 400*time.Millisecond, 800*time.Millisecond, 5*time.Second, 600*time.Millisecond, 5*time.Second, 64, 8)
	dir := fixture(t)
	backend(t, dir, func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) })
	addr := serveFixture(t, dir)
	// Each limit plus what a loaded 2-core machine may add.
	slack := 3 * time.Second

	t.Run("headers", func(t *testing.T) {
		c := dial(t, addr)
		stop := make(chan struct{})
		defer close(stop)
		go dribble(c, "GET /status HTTP/1.1\r\nHost: node\r\n"+strings.Repeat("X-Slow: 1\r\n", 1000), stop)
		d := closedWithin(t, c, readHeaderTimeout+slack)
		t.Logf("slow headers cut off after %s (limit %s)", d.Round(time.Millisecond), readHeaderTimeout)
	})
	t.Run("body", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "POST /api/v1/deployments HTTP/1.1\r\nHost: node\r\nContent-Length: 100000\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go dribble(c, strings.Repeat("x", 100000), stop)
		d := closedWithin(t, c, readTimeout+slack)
		t.Logf("slow body cut off after %s (limit %s)", d.Round(time.Millisecond), readTimeout)
	})
	t.Run("idle", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET /status HTTP/1.1\r\nHost: node\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /status: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		d := closedWithin(t, c, idleTimeout+slack)
		t.Logf("idle connection closed after %s (limit %s)", d.Round(time.Millisecond), idleTimeout)
	})
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dribble writes s a byte every 50 ms until stop or a write fails.
func dribble(c net.Conn, s string, stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for i := 0; i < len(s); i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// The server serves maxConns connections at once: one more is answered
// 503 at once, and served again once a connection closes.
func TestConnectionCap(t *testing.T) {
	short(t, 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second, 4, 8)
	addr := serveFixture(t, fixture(t))
	var held []net.Conn
	for range maxConns {
		c := dial(t, addr)
		held = append(held, c) // connected, and saying nothing
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection %d: %v; want a 503 at once", maxConns+1, err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "as many connections as it takes") {
		t.Fatalf("connection %d: %d %q; want 503 saying the server is full", maxConns+1, resp.StatusCode, b)
	}
	held[0].Close()
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "/status to be served once a connection closed")
}

// backend serves h on a unix socket that the workloads fact names, as the
// workloads module does.
func backend(t *testing.T, dir string, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "workloads.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if err := fact.Folder(dir).Write(fact.NameWorkloads, fact.Workloads{Socket: sock}); err != nil {
		t.Fatal(err)
	}
	return sock
}

// A followed log outlives the server's read and write deadlines while it
// is quiet; a client that stops reading it is cut off after streamWrite;
// and no more than maxStreams run at once.
func TestFollowedLogStream(t *testing.T) {
	short(t, 5*time.Second, 300*time.Millisecond, 300*time.Millisecond, 30*time.Second, 500*time.Millisecond, 64, 1)
	dir := fixture(t)
	quiet := 3 * writeTimeout // longer than every deadline of an ordinary answer
	var gone atomic.Int32
	backend(t, dir, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		if r.URL.Query().Get("flood") != "" {
			line := []byte(strings.Repeat("x", 1023) + "\n")
			for {
				if _, err := w.Write(line); err != nil {
					break
				}
			}
			<-r.Context().Done()
			gone.Add(1)
			return
		}
		select {
		case <-time.After(quiet): // a deliberate silence, not a synchronisation
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "later\n")
	})
	addr := serveFixture(t, dir)
	url := "http://" + addr + "/api/v1/deployments/web/logs/web?follow=1"

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); l != "first\n" {
		t.Fatalf("first line %q, %v", l, err)
	}
	// While this stream runs (maxStreams is 1), another is refused.
	if code, body := get(t, url); code != http.StatusServiceUnavailable || !strings.Contains(body, "followed logs") {
		t.Errorf("a second stream: %d %q; want 503", code, body)
	}
	if l, err := br.ReadString('\n'); l != "later\n" {
		t.Fatalf("after %s of silence: %q, %v; want the stream to go on", quiet, l, err)
	}
	resp.Body.Close()

	// A client that asks for a stream and never reads it (once the
	// previous stream's slot is free: when its handler has returned).
	var c net.Conn
	testutil.Eventually(t, 5*time.Second, func() bool {
		c = startUnread(t, addr, "/api/v1/deployments/web/logs/web?follow=1&flood=1")
		return c != nil
	}, "a flooding stream to start")
	defer c.Close()
	testutil.Eventually(t, streamWrite+10*time.Second, func() bool { return gone.Load() == 1 },
		"the server to drop a stream its client does not read (streamWrite %s)", streamWrite)
}

// startUnread sends GET path and reads only the status line: the
// connection when it is 200, else nil.
func startUnread(t *testing.T, addr, path string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: node\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 12)
	if n, _ := io.ReadFull(c, b); string(b[:n]) != "HTTP/1.1 200" {
		c.Close()
		return nil
	}
	return c
}
