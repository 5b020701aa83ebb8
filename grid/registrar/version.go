package registrar

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// defaultVersion is served until an admin sets one.
var defaultVersion = base64.StdEncoding.EncodeToString([]byte(`{"version":"v0.0.0","safe_to_upgrade":false}`))

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	v, err := s.st.ZOSVersion(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		v, err = defaultVersion, nil
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, v)
}

func (s *Server) setVersion(w http.ResponseWriter, r *http.Request) {
	body, _, ok := s.adminBody(w, r, "set the version")
	if !ok {
		return
	}
	var req api.SetZOSVersion
	if !decode(w, body, &req) {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(req.Version)
	var v api.ZOSVersion
	if err != nil || json.Unmarshal(raw, &v) != nil || v.Version == "" {
		fail(w, http.StatusBadRequest, `invalid version: want base64 of {"version": "...", "safe_to_upgrade": bool}`)
		return
	}
	if err := s.st.SetZOSVersion(r.Context(), req.Version); err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "version updated successfully"})
}
