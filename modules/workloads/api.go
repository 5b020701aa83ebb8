package workloads

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/workload/auth"
	"github.com/gridnode/gridnode/workload/logs"
)

// Handler serves the deployments API (see node/deployment's Path) for m,
// every request checked by a.
func (m *Manager) Handler(a *auth.Authenticator) http.Handler {
	mux := http.NewServeMux()
	p := deployment.Path
	mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) {
		c, ok := authenticate(w, r, a, true)
		if !ok {
			return
		}
		if err := a.MayDeploy(r.Context(), c.Twin); err != nil {
			fail(w, err)
			return
		}
		d, err := deployment.DecodeJSON(c.Body)
		if err != nil {
			fail(w, refusal(http.StatusBadRequest, "deployment: %v", err))
			return
		}
		st, err := m.Deploy(c.Twin, d)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusAccepted, st)
	})
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		if c, ok := authenticate(w, r, a, false); ok {
			reply(w, http.StatusOK, m.List(c.Twin, a.IsFarmer(r.Context(), c.Twin)))
		}
	})
	mux.HandleFunc("GET "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := authenticate(w, r, a, false)
		if !ok {
			return
		}
		st, found := m.Status(c.Twin, r.PathValue("name"))
		if !found {
			fail(w, refusal(http.StatusNotFound, "no deployment %q of twin %d on this node", r.PathValue("name"), c.Twin))
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("DELETE "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := authenticate(w, r, a, true)
		if !ok {
			return
		}
		purge := r.URL.Query().Get("purge")
		st, err := m.Undeploy(c.Twin, r.PathValue("name"), purge == "1" || purge == "true")
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET "+p+"/{name}/logs/{workload}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := authenticate(w, r, a, false)
		if !ok {
			return
		}
		name := r.PathValue("name")
		lf, err := m.Log(c.Twin, name, r.PathValue("workload"))
		if err != nil {
			fail(w, err)
			return
		}
		tail, _ := strconv.ParseInt(r.URL.Query().Get("tail"), 10, 64)
		b, pos, err := lf.Tail(tail)
		if err != nil {
			fail(w, refusal(http.StatusInternalServerError, "reading the log: %v", err))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
		if f := r.URL.Query().Get("follow"); f == "1" || f == "true" {
			m.follow(w, r, lf, pos, c.Twin, name)
		}
	})
	return mux
}

// follow streams what the log gets until the client leaves or the
// deployment is gone.
func (m *Manager) follow(w http.ResponseWriter, r *http.Request, lf *logs.File, pos logs.Pos, owner uint64, name string) {
	fl, _ := w.(http.Flusher)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if fl != nil {
			fl.Flush()
		}
		b, p, wake, err := lf.Follow(pos)
		if err != nil {
			return
		}
		pos = p
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return
			}
			continue
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-t.C:
			if cur, err := m.Log(owner, name, r.PathValue("workload")); err != nil || cur != lf {
				return // undeployed, or a new generation's log
			}
		}
	}
}

func authenticate(w http.ResponseWriter, r *http.Request, a *auth.Authenticator, write bool) (auth.Caller, bool) {
	c, err := a.Authenticate(r, write)
	if err != nil {
		fail(w, err)
		return auth.Caller{}, false
	}
	return c, true
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers err: an *auth.Error or *apiError with its status, anything
// else as 500.
func fail(w http.ResponseWriter, err error) {
	body := deployment.Error{Error: err.Error()}
	status := http.StatusInternalServerError
	var ae *auth.Error
	var re *apiError
	switch {
	case errors.As(err, &ae):
		status = ae.Status
	case errors.As(err, &re):
		status, body.Need, body.Free = re.status, re.need, re.free
	}
	reply(w, status, body)
}

// Unavailable answers every deployments request with 503 and why (a node
// without a cache disk takes no deployments).
func Unavailable(why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusServiceUnavailable, deployment.Error{Error: why})
	})
}
