package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/grid/simulate"
)

func TestSimulateJSON(t *testing.T) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	out, errOut, code := farmRun(t, "", "simulate", "--nodes", "20", "--concurrency", "4", "--registrar", srv.URL, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res simulate.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Registered != 20 || reg.NodeCount() != 20 {
		t.Fatalf("output %q: %v", out, err)
	}
	out, errOut, code = farmRun(t, "", "simulate", "--nodes", "5", "--start-index", "20", "--registrar", srv.URL)
	if code != 0 || !strings.Contains(out, "registered 5, failed 0") || reg.NodeCount() != 25 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}

// --ids: a storm writes the nodes' ids, a steady run reads them and
// registers nothing.
func TestSimulateIDsFile(t *testing.T) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	ids := filepath.Join(t.TempDir(), "ids")
	_, errOut, code := farmRun(t, "", "simulate", "--nodes", "30", "--concurrency", "4", "--assume-new", "--registrar", srv.URL, "--ids", ids, "--json")
	if code != 0 {
		t.Fatalf("storm: exit %d: %s", code, errOut)
	}
	if fi, err := os.Stat(ids); err != nil || fi.Size() < 30*16 {
		t.Fatalf("ids file: %v, %v", fi, err)
	}
	accounts := reg.AccountCount()
	out, errOut, code := farmRun(t, "", "simulate", "--nodes", "30", "--mode", "steady", "--rate", "30", "--duration", "1s",
		"--registrar", srv.URL, "--ids", ids, "--json")
	var res simulate.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("steady: exit %d: %s%s", code, out, errOut)
	}
	if res.Known != 30 || res.Registered != 0 || reg.AccountCount() != accounts || res.Ops[simulate.OpUptime].Count == 0 {
		t.Fatalf("steady with --ids: %+v; registrar has %d accounts, had %d", res, reg.AccountCount(), accounts)
	}
	// A file of another seed is refused, saying why.
	_, errOut, code = farmRun(t, "", "simulate", "--nodes", "30", "--seed", "other", "--registrar", srv.URL, "--ids", ids)
	if code == 0 || !strings.Contains(errOut, "seed") {
		t.Fatalf("another seed: exit %d: %s", code, errOut)
	}
}
