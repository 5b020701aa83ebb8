package tests

// `gridnode registrar` as a process of its own, for the registrar's
// benchmark (bench_registrar_test.go) and its replica test
// (replicas_test.go).

import (
	"bufio"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// buildGridnode builds the command into the test's temporary folder.
func buildGridnode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gridnode")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gridnode")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gridnode: %v\n%s", err, out)
	}
	return bin
}

// registrarProc is `gridnode registrar` running as a child process.
type registrarProc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	mu   sync.Mutex
	log  []string // last lines of its log
}

var regServingAddr = regexp.MustCompile(`registrar serving.* addr=(\S+)`)

// startRegistrar starts the registrar on db on a free loopback port, with
// the flags args, and waits until it serves (it logs its address), for at
// most a minute.
func startRegistrar(t *testing.T, bin, db string, args ...string) *registrarProc {
	p := &registrarProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"registrar", "--listen", "127.0.0.1:0", "--db", db, "--log-level", "info"}, args...)...)
	// Dies with the test, should the test itself be killed (a timeout):
	// a registrar left behind holds its port and its database.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			if len(p.log) > 50 {
				p.log = p.log[1:]
			}
			p.mu.Unlock()
			if m := regServingAddr.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		p.cmd.Wait()
	}()
	select {
	case p.addr = <-addr:
	case <-p.done:
		t.Fatalf("the registrar exited before serving:\n%s", p.tail())
	case <-time.After(time.Minute):
		p.kill()
		t.Fatalf("the registrar did not serve within a minute:\n%s", p.tail())
	}
	t.Logf("registrar pid %d serving on %s", p.cmd.Process.Pid, p.addr)
	return p
}

func (p *registrarProc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// stop sends SIGTERM and waits for the process to exit.
func (p *registrarProc) stop(within time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if st := p.cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("registrar exited with %v", st)
		}
		return nil
	case <-time.After(within):
		p.kill()
		return fmt.Errorf("registrar still running %v after SIGTERM", within)
	}
}

func (p *registrarProc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// regFreshPostgres makes an empty database for the registrar: a new database
// when the role may create one, else a new schema of the given database.
// It returns the registrar's URL, what was made, and a size function that
// sums the tables and indexes the registrar made. Both are dropped at
// cleanup.
func regFreshPostgres(t *testing.T, base string) (dbURL, note string, size func() (int64, error)) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Ping(); err != nil {
		t.Fatalf("PostgreSQL at GRIDNODE_TEST_POSTGRES: %v (run .ci/postgres.sh)", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "gridnode_bench_" + hex.EncodeToString(b)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err == nil {
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		u, err := neturl.Parse(base)
		if err != nil {
			t.Fatalf("GRIDNODE_TEST_POSTGRES: %v", err)
		}
		u.Path = "/" + name
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return u.String(), "new database, pg_database_size", func() (int64, error) {
			var n int64
			err := db.QueryRow(`SELECT pg_database_size(current_database())`).Scan(&n)
			return n, err
		}
	}
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("creating a database or a schema for the benchmark: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + name + " CASCADE") })
	return base + sep + "search_path=" + name, "new schema (the role may not create databases): tables + indexes + TOAST", func() (int64, error) {
		var n sql.NullInt64
		err := admin.QueryRow(`SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
			WHERE s.nspname = $1 AND c.relkind IN ('r', 'm')`, name).Scan(&n)
		return n.Int64, err
	}
}
