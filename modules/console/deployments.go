package console

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
)

// deployments forwards /api/v1/deployments and what is under it, as it
// came (method, path, query, headers, body), to the workloads module's
// socket, which the workloads fact names; the module checks every
// signature. Answers stream (a followed log, within the limits of
// streams).
func deployments(dir string) http.Handler {
	socket := func() (string, bool) {
		var f fact.Workloads
		if fact.Folder(dir).Read(fact.NameWorkloads, &f) != nil || f.Socket == "" {
			return "", false
		}
		return f.Socket, true
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "workloads"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			s, _ := socket()
			return (&net.Dialer{}).DialContext(ctx, "unix", s)
		}},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			unavailable(w, "the workloads module does not answer: "+err.Error())
		},
	}
	streams := newStreams()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := socket(); !ok {
			unavailable(w, "the workloads module is not running yet")
			return
		}
		if isStream(r) {
			streams.serve(w, r, proxy)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(deployment.Error{Error: msg})
}
