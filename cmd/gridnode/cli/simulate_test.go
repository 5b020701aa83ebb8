package cli

import (
	"encoding/json"
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
