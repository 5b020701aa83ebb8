package console

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The memory metrics add up VmRSS and Pss of the processes that run the
// same executable (PID 1 and its modules), and of no other process.
func TestMetricsNodeMemory(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid, exe, cmdline, status, smaps string) {
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"cmdline": cmdline, "status": status, "smaps_rollup": smaps} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("self", "/init", "", "", "")
	mk("1", "/init", "/init\x00", "Name:\tinit\nVmRSS:\t    1000 kB\n", "Rss: 1000 kB\nPss:    400 kB\n")
	mk("7", "/init", "/init\x00module\x00console\x00", "VmRSS:\t2000 kB\n", "Pss: 600 kB\n")
	mk("9", "/bin/busybox", "sh\x00", "VmRSS:\t5000 kB\n", "Pss: 5000 kB\n")
	mk("11", "/init", "/init\x00module\x00gone\x00", "State:\tZ (zombie)\n", "")
	old := procRoot
	procRoot = proc
	defer func() { procRoot = old }()

	srv := httptest.NewServer(Handler(fixture(t)))
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`gridnode_process_rss_bytes{process="init",pid="1"} 1024000`,
		`gridnode_process_rss_bytes{process="console",pid="7"} 2048000`,
		`gridnode_process_pss_bytes{process="console",pid="7"} 614400`,
		"gridnode_memory_rss_bytes 3072000",
		"gridnode_memory_pss_bytes 1024000",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `pid="9"`) || strings.Contains(body, `pid="11"`) {
		t.Errorf("/metrics counts a process that is not gridnode's, or a zombie:\n%s", body)
	}
}
