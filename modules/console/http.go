package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"

	"github.com/gridnode/gridnode/node/deployment"
)

// Handler serves /status, /metrics and /log/NAME from the fact folder dir,
// which only read, and forwards the deployments API to the workloads
// module, which takes only signed requests.
func Handler(dir string) http.Handler {
	mux := http.NewServeMux()
	fwd := deployments(dir)
	mux.Handle(deployment.Path, fwd)
	mux.Handle(deployment.Path+"/", fwd)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		facts := readFacts(dir)
		b, err := json.MarshalIndent(facts, "", "  ")
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(metrics(load(dir)))
	})
	mux.HandleFunc("GET /log/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if !moduleName.MatchString(name) {
			http.Error(w, "log: bad module name", http.StatusBadRequest)
			return
		}
		p := filepath.Join(dir, "log", name+".log")
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			http.Error(w, "log: no log for module "+name, http.StatusNotFound)
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			http.Error(w, "log: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "gridnode status endpoint: /status /metrics /log/MODULE")
	})
	return mux
}

var moduleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// metrics renders the Prometheus text format by hand: a handful of gauges
// and counters do not justify a client library in a 64 MB node.
func metrics(s snapshot) []byte {
	var b bytes.Buffer
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	if h := s.hardware; h != nil {
		metric("gridnode_capacity_bytes", "gauge", "Capacity the node reports: memory (mru), SSD (sru) and HDD (hru) bytes.")
		fmt.Fprintf(&b, "gridnode_capacity_bytes{kind=\"mru\"} %d\n", h.MRU)
		fmt.Fprintf(&b, "gridnode_capacity_bytes{kind=\"sru\"} %d\n", h.SRU)
		fmt.Fprintf(&b, "gridnode_capacity_bytes{kind=\"hru\"} %d\n", h.HRU)
		metric("gridnode_cpus", "gauge", "Logical CPUs the node reports (cru).")
		fmt.Fprintf(&b, "gridnode_cpus %d\n", h.CRU)
	}
	if len(s.modules) > 0 {
		names := s.moduleNames()
		metric("gridnode_module_restarts_total", "counter", "Times the supervisor restarted the module.")
		for _, n := range names {
			fmt.Fprintf(&b, "gridnode_module_restarts_total{module=%q} %d\n", n, s.modules[n].Restarts)
		}
		metric("gridnode_module_ready", "gauge", "1 when the module is running and ready.")
		for _, n := range names {
			ready := 0
			if s.modules[n].State == "ready" {
				ready = 1
			}
			fmt.Fprintf(&b, "gridnode_module_ready{module=%q} %d\n", n, ready)
		}
	}
	if r := s.registrar; r != nil {
		metric("gridnode_uptime_reports_total", "counter", "Uptime reports sent to the registrar, by result.")
		fmt.Fprintf(&b, "gridnode_uptime_reports_total{result=\"sent\"} %d\n", r.UptimeSent)
		fmt.Fprintf(&b, "gridnode_uptime_reports_total{result=\"failed\"} %d\n", r.UptimeFailed)
		metric("gridnode_registered", "gauge", "1 when the node is registered with the registrar.")
		reg := 0
		if r.State == "registered" {
			reg = 1
		}
		fmt.Fprintf(&b, "gridnode_registered %d\n", reg)
	}
	if procs := nodeMemory(); len(procs) > 0 {
		var rss, pss uint64
		metric("gridnode_process_rss_bytes", "gauge", "Resident memory of each gridnode process (VmRSS; shared pages counted in each).")
		for _, p := range procs {
			fmt.Fprintf(&b, "gridnode_process_rss_bytes{process=%q,pid=\"%d\"} %d\n", p.Name, p.PID, p.RSS)
			rss += p.RSS
		}
		metric("gridnode_process_pss_bytes", "gauge", "Proportional memory of each gridnode process (Pss: shared pages divided among their users).")
		for _, p := range procs {
			fmt.Fprintf(&b, "gridnode_process_pss_bytes{process=%q,pid=\"%d\"} %d\n", p.Name, p.PID, p.PSS)
			pss += p.PSS
		}
		metric("gridnode_memory_rss_bytes", "gauge", "Sum of VmRSS of every gridnode process (PID 1 and its modules).")
		fmt.Fprintf(&b, "gridnode_memory_rss_bytes %d\n", rss)
		metric("gridnode_memory_pss_bytes", "gauge", "Sum of Pss of every gridnode process: the memory they take together.")
		fmt.Fprintf(&b, "gridnode_memory_pss_bytes %d\n", pss)
	}
	metric("gridnode_uptime_seconds", "gauge", "Seconds since the machine booted.")
	fmt.Fprintf(&b, "gridnode_uptime_seconds %.0f\n", s.uptime.Seconds())
	metric("gridnode_facts", "gauge", "Facts published under /run/gridnode.")
	fmt.Fprintf(&b, "gridnode_facts %d\n", len(s.raw))
	return b.Bytes()
}
