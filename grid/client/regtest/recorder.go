package regtest

import (
	"net/http"
	"sync"

	"github.com/gridnode/gridnode/grid/api"
)

// Recorder wraps a registrar's handler (this package's, or the project's
// registrar) and keeps every request it served, so that a test of a client
// sees what went on the wire: how it signed, how it paged.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Request is one request a Recorder saw.
type Request struct {
	Method, URI string // URI: the path and query, as sent
	// Auth and Strict say whether it carried X-Auth and X-Auth-Strict.
	Auth, Strict bool
	Status       int // the answer's
}

// Wrap returns h, recording what it serves.
func (rec *Recorder) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, Request{Method: r.Method, URI: r.URL.RequestURI(),
			Auth: r.Header.Get(api.HeaderAuth) != "", Strict: r.Header.Get(api.HeaderAuthStrict) != "", Status: sw.status})
		rec.mu.Unlock()
	})
}

// Requests returns the requests served so far, in the order they ended.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Request(nil), rec.reqs...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
