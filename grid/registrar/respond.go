package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/groupcommit"
)

// HTTP plumbing shared by the handlers: answers, errors, bodies, ids in
// paths and queries, pagination.

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, api.Error{Error: msg})
}

// internal answers 500 for a store failure, logging what went wrong.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	fail(w, http.StatusInternalServerError, "internal error")
}

// readBody reads the body (answering 413 when too large).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mb.Limit))
		} else {
			fail(w, http.StatusBadRequest, "reading request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// decode unmarshals body into v, answering 400 on malformed JSON.
func decode(w http.ResponseWriter, body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// authJSON authenticates r and decodes its JSON body into a T. When it
// returns false it has answered.
func authJSON[T any](s *Server, w http.ResponseWriter, r *http.Request) (req T, signer uint64, ok bool) {
	body, signer, ok := s.authBody(w, r)
	if !ok || !decode(w, body, &req) {
		return req, 0, false
	}
	return req, signer, true
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, 63)
	if err != nil || v == 0 {
		fail(w, http.StatusBadRequest, "invalid "+name+": "+strconv.Quote(r.PathValue(name)))
		return 0, false
	}
	return v, true
}

func queryID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	q := r.URL.Query().Get(name)
	if q == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(q, 10, 63)
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid "+name+": "+strconv.Quote(q))
		return 0, false
	}
	return v, true
}

// pagination reads page (from 1), size (default 50, at most
// api.MaxPageSize) and the extension after (a record id: the page of the
// records after it, found by key however deep it is, where page walks past
// every record before it). page and after do not go together.
func pagination(w http.ResponseWriter, r *http.Request) (limit, offset int, after uint64, ok bool) {
	page, size := 1, 50
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 1<<30 {
			fail(w, http.StatusBadRequest, "invalid page: "+strconv.Quote(v)+" (an integer from 1)")
			return 0, 0, 0, false
		}
		page = p
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxPageSize {
			fail(w, http.StatusBadRequest, "invalid size: "+strconv.Quote(v)+" (an integer from 1 to "+strconv.Itoa(api.MaxPageSize)+")")
			return 0, 0, 0, false
		}
		size = n
	}
	if after, ok = queryID(w, r, "after"); !ok {
		return 0, 0, 0, false
	}
	if after != 0 && page != 1 {
		fail(w, http.StatusBadRequest, "give page or after, not both (after=ID is the page after the record ID)")
		return 0, 0, 0, false
	}
	return size, (page - 1) * size, after, true
}

// unavailableRetry is the Retry-After of a 503: long enough for a database
// that missed a group's deadline to catch up, short beside a node's
// uptime interval.
const unavailableRetry = "10"

// storeErr answers a store error: 404, 409, 503 or 500.
func (s *Server) storeErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		// The database's own words stay in the log.
		s.log.Warn("write not committed", "method", r.Method, "path", r.URL.Path, "err", err)
		why := "the database is unavailable"
		var de *groupcommit.DeadlineError
		if errors.As(err, &de) {
			why = fmt.Sprintf("the database did not commit it within %s (%s)", de.Deadline, de.TriesText())
		} else if errors.Is(err, groupcommit.ErrClosed) {
			why = "the registrar is shutting down"
		}
		w.Header().Set("Retry-After", unavailableRetry)
		fail(w, http.StatusServiceUnavailable, what+" not recorded: "+why+"; retry after the seconds in Retry-After")
	case errors.Is(err, store.ErrNotFound):
		fail(w, http.StatusNotFound, what+" not found")
	case errors.Is(err, store.ErrConflict):
		fail(w, http.StatusConflict, what+" already exists")
	case errors.Is(err, store.ErrNoFarm):
		fail(w, http.StatusNotFound, "farm not found")
	default:
		s.internal(w, r, err)
	}
}
