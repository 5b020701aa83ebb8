package registrar

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req api.CreateAccount
	if !decode(w, body, &req) {
		return
	}
	now := s.now()
	if d := now.Unix() - req.Timestamp; d > int64(api.AccountWindow/time.Second) || d < -int64(api.AccountWindow/time.Second) {
		reply(w, http.StatusBadRequest, api.Error{Error: "timestamp outside acceptable window", ServerTime: now.Unix()})
		return
	}
	// One key, one spelling: keys are stored and compared as PublicKey
	// writes them, and another spelling of the same bytes is refused.
	key, err := api.ParsePublicKey(req.PublicKey)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := req.Check(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	sig, err := base64.StdEncoding.DecodeString(req.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		fail(w, http.StatusBadRequest, "invalid signature: want standard base64 of a 64-byte ed25519 signature")
		return
	}
	if !ed25519.Verify(key, api.AccountMessage(req.Timestamp, req.PublicKey), sig) {
		fail(w, http.StatusUnauthorized, "signature verification failed")
		return
	}
	if req.Relays == nil {
		req.Relays = []string{}
	}
	a := api.Account{Relays: req.Relays, RMBEncKey: req.RMBEncKey, PublicKey: req.PublicKey,
		CreatedAt: store.Stamp(now), UpdatedAt: store.Stamp(now)}
	id, err := s.st.CreateAccount(r.Context(), a)
	if err != nil {
		s.storeErr(w, r, "account for this public key", err)
		return
	}
	a.TwinID = id
	s.keys.put(id, [ed25519.PublicKeySize]byte(key))
	reply(w, http.StatusCreated, a)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	twinS, key := q.Get("twin_id"), q.Get("public_key")
	if (twinS == "") == (key == "") {
		fail(w, http.StatusBadRequest, "give exactly one of twin_id and public_key")
		return
	}
	var a api.Account
	var err error
	if twinS != "" {
		twin, ok := queryID(w, r, "twin_id")
		if !ok {
			return
		}
		a, err = s.st.Account(r.Context(), twin)
	} else {
		// Base64 has no spaces: a space is a "+" a client did not escape.
		// Keys are stored canonical, so a key is looked up in that spelling.
		canon, ok := api.CanonicalKey(strings.ReplaceAll(key, " ", "+"))
		if !ok {
			fail(w, http.StatusBadRequest, "invalid public_key: want standard base64 of a 32-byte ed25519 key")
			return
		}
		a, err = s.st.AccountByKey(r.Context(), canon)
	}
	if err != nil {
		s.storeErr(w, r, "account", err)
		return
	}
	reply(w, http.StatusOK, a)
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) {
	twin, ok := pathID(w, r, "twin_id")
	if !ok {
		return
	}
	body, signer, ok := s.authBody(w, r)
	if !ok {
		return
	}
	if signer != twin {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" may not change twin "+strconv.FormatUint(twin, 10))
		return
	}
	var req api.UpdateAccount
	if !decode(w, body, &req) {
		return
	}
	if err := req.Check(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateAccount(r.Context(), twin, req, s.now()); err != nil {
		s.storeErr(w, r, "account", err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "account updated successfully"})
}
