package registrar

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// Release channels (issue 13): PUT /channels/{name} by the admin twin with
// a signed channel document (upgrade/doc) as the body, stored as sent;
// GET /channels/{name}, public, answering the document and the hold
// (doc.ChannelState) from memory (channelCache), with an ETag.

// adminBody authenticates r as the admin twin (Config.AdminTwin), answering
// 401/403 itself, and returns the body.
func (s *Server) adminBody(w http.ResponseWriter, r *http.Request, what string) ([]byte, uint64, bool) {
	body, signer, ok := s.authBody(w, r)
	if !ok {
		return nil, 0, false
	}
	if s.cfg.AdminTwin == 0 || signer != s.cfg.AdminTwin {
		fail(w, http.StatusForbidden, "only the admin twin may "+what+" (gridnode registrar --admin-twin)")
		return nil, 0, false
	}
	return body, signer, true
}

// channelName is the {name} of a channel route, answering 400 for a name
// no channel can have.
func channelName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !doc.ValidChannelName(name) {
		fail(w, http.StatusBadRequest, "invalid channel name "+strconv.Quote(clipped(name))+": lower-case letters, digits and -, up to 32")
		return "", false
	}
	return name, true
}

// adminChannel is channelName and adminBody: a write to a channel.
func (s *Server) adminChannel(w http.ResponseWriter, r *http.Request, what string) (name string, body []byte, signer uint64, ok bool) {
	if name, ok = channelName(w, r); !ok {
		return "", nil, 0, false
	}
	body, signer, ok = s.adminBody(w, r, what)
	return name, body, signer, ok
}

func clipped(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// polled returns the channel a public route names, as polls see it
// (channelCache), answering 400, 404 or 500 itself.
func (s *Server) polled(w http.ResponseWriter, r *http.Request) (*channelSnap, bool) {
	name, ok := channelName(w, r)
	if !ok {
		return nil, false
	}
	snap, err := s.channels.get(r.Context(), name)
	if err != nil {
		s.internal(w, r, err)
		return nil, false
	}
	if !snap.found {
		fail(w, http.StatusNotFound, "no channel "+name+" on this registrar")
		return nil, false
	}
	return snap, true
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.polled(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("ETag", snap.etag)
	// Every poll asks again: a hold must reach nodes at their next poll.
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, snap.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(snap.body)))
	w.WriteHeader(http.StatusOK)
	w.Write(snap.body)
}

// putChannel stores a channel document: well formed, for the channel the
// path names, unexpired, signed by one of the release keys (when the
// registrar has any), with a sequence above the stored one.
func (s *Server) putChannel(w http.ResponseWriter, r *http.Request) {
	name, body, _, ok := s.adminChannel(w, r, "publish a channel document")
	if !ok {
		return
	}
	c, err := doc.OpenChannel(body, s.cfg.ReleaseKeys)
	switch {
	case !utf8.Valid(body):
		// JSON decoding lets invalid UTF-8 through; the document is kept
		// as text, byte for byte.
		fail(w, http.StatusBadRequest, "the document is not valid UTF-8")
		return
	case errors.Is(err, doc.ErrUnsigned) || errors.Is(err, doc.ErrUnknownKey) || errors.Is(err, doc.ErrBadSig):
		fail(w, http.StatusForbidden, err.Error()+" (the registrar's --release-key)")
		return
	case err != nil:
		fail(w, http.StatusBadRequest, err.Error())
		return
	case c.Channel != name:
		fail(w, http.StatusBadRequest, fmt.Sprintf("the document is for channel %q, the path names %q", c.Channel, name))
		return
	case c.Sequence > math.MaxInt64:
		fail(w, http.StatusBadRequest, "channel sequence above 2^63-1")
		return
	}
	now := s.now()
	if !now.Before(c.Expires) {
		fail(w, http.StatusBadRequest, "the document expired at "+c.Expires.UTC().Format("2006-01-02T15:04:05Z")+"; sign one with a later expiry")
		return
	}
	stored, err := s.st.PutChannel(r.Context(), store.Channel{Name: name, Document: body, Sequence: c.Sequence, Version: c.Version, StoredAt: store.Stamp(now)})
	if errors.Is(err, store.ErrConflict) {
		cur, rerr := s.st.Channel(r.Context(), name)
		switch {
		case rerr != nil:
			s.storeErr(w, r, "channel "+name, rerr)
		case cur.Sequence == c.Sequence && bytes.Equal(cur.Document, body):
			// The same document again (a retry whose answer was lost).
			s.replyStatus(w, r, cur)
		default:
			fail(w, http.StatusConflict, fmt.Sprintf("channel %s has sequence %d stored; nodes accept only a higher one: sign the document with --sequence %d or more", name, cur.Sequence, cur.Sequence+1))
		}
		return
	}
	if err != nil {
		s.storeErr(w, r, "channel "+name, err)
		return
	}
	s.channels.put(stored)
	s.log.Info("channel document stored", "channel", name, "sequence", c.Sequence, "version", c.Version, "release", c.Release)
	s.rollouts.kick()
	s.replyStatus(w, r, stored)
}
