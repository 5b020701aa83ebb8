package registrar

import (
	"net/http"
	"strconv"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

func (s *Server) listFarms(w http.ResponseWriter, r *http.Request) {
	var f store.FarmFilter
	var ok bool
	if f.FarmID, ok = queryID(w, r, "farm_id"); !ok {
		return
	}
	if f.TwinID, ok = queryID(w, r, "twin_id"); !ok {
		return
	}
	f.FarmName = r.URL.Query().Get("farm_name")
	if f.Limit, f.Offset, f.After, ok = pagination(w, r); !ok {
		return
	}
	farms, err := s.st.Farms(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, farms)
}

func (s *Server) getFarm(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "farm_id")
	if !ok {
		return
	}
	f, err := s.st.Farm(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	reply(w, http.StatusOK, f)
}

func (s *Server) createFarm(w http.ResponseWriter, r *http.Request) {
	req, signer, ok := authJSON[api.CreateFarm](s, w, r)
	if !ok {
		return
	}
	if err := api.ValidFarmName(req.FarmName); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.ValidStellar(req.StellarAddress); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.TwinID != signer {
		fail(w, http.StatusForbidden, "twin_id must be the signing twin "+strconv.FormatUint(signer, 10))
		return
	}
	now := store.Stamp(s.now())
	id, err := s.st.CreateFarm(r.Context(), api.Farm{FarmName: req.FarmName, TwinID: req.TwinID, StellarAddress: req.StellarAddress,
		Dedicated: req.Dedicated, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		s.storeErr(w, r, "farm named "+strconv.Quote(req.FarmName), err)
		return
	}
	reply(w, http.StatusCreated, api.FarmID{FarmID: id})
}

func (s *Server) updateFarm(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "farm_id")
	if !ok {
		return
	}
	req, signer, ok := authJSON[api.UpdateFarm](s, w, r)
	if !ok {
		return
	}
	f, err := s.st.Farm(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	if f.TwinID != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own farm "+strconv.FormatUint(id, 10))
		return
	}
	if req.FarmName == "" {
		req.FarmName = f.FarmName
	}
	if req.StellarAddress == "" {
		req.StellarAddress = f.StellarAddress
	}
	if err := api.ValidFarmName(req.FarmName); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.ValidStellar(req.StellarAddress); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateFarm(r.Context(), id, req, s.now()); err != nil {
		s.storeErr(w, r, "farm named "+strconv.Quote(req.FarmName), err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "farm updated successfully"})
}
