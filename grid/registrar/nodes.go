package registrar

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

func (s *Server) online(n *api.Node, now time.Time) {
	n.Online = n.LastSeen != nil && now.Sub(*n.LastSeen) <= api.OnlineWindow
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	var f store.NodeFilter
	var ok bool
	if f.NodeID, ok = queryID(w, r, "node_id"); !ok {
		return
	}
	if f.FarmID, ok = queryID(w, r, "farm_id"); !ok {
		return
	}
	if f.TwinID, ok = queryID(w, r, "twin_id"); !ok {
		return
	}
	now := s.now()
	q := r.URL.Query()
	if v := q.Get("online"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(w, http.StatusBadRequest, "invalid online: "+strconv.Quote(v)+" (true or false)")
			return
		}
		f.Online, f.OnlineSince = &b, now.Add(-api.OnlineWindow)
	}
	if v := q.Get("last_seen"); v != "" {
		m, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			fail(w, http.StatusBadRequest, "invalid last_seen: "+strconv.Quote(v)+" (minutes)")
			return
		}
		f.SeenSince = now.Add(-time.Duration(m) * time.Minute)
	}
	if f.Limit, f.Offset, ok = pagination(w, r); !ok {
		return
	}
	nodes, err := s.st.Nodes(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	for i := range nodes {
		s.online(&nodes[i], now)
	}
	reply(w, http.StatusOK, nodes)
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "node_id")
	if !ok {
		return
	}
	n, err := s.st.Node(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	s.online(&n, s.now())
	reply(w, http.StatusOK, n)
}

func validNode(farm uint64, res api.Resources, ifaces []api.Interface, serial string) error {
	const maxI = 1<<63 - 1
	switch {
	case farm == 0:
		return errors.New("farm_id is required")
	case len(ifaces) == 0:
		return errors.New("interfaces must not be empty")
	case strings.TrimSpace(serial) == "":
		return errors.New("serial_number is required")
	case res.HRU > maxI || res.SRU > maxI || res.CRU > maxI || res.MRU > maxI:
		return errors.New("resources out of range")
	}
	return nil
}

func (s *Server) createNode(w http.ResponseWriter, r *http.Request) {
	req, signer, ok := authJSON[api.CreateNode](s, w, r)
	if !ok {
		return
	}
	if err := validNode(req.FarmID, req.Resources, req.Interfaces, req.SerialNumber); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.CheckGPUs(req.GPUs); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.TwinID != signer {
		fail(w, http.StatusForbidden, "twin_id must be the signing twin "+strconv.FormatUint(signer, 10))
		return
	}
	now := store.Stamp(s.now())
	id, err := s.st.CreateNode(r.Context(), api.Node{FarmID: req.FarmID, TwinID: req.TwinID, Location: req.Location, Resources: req.Resources,
		Interfaces: req.Interfaces, SecureBoot: req.SecureBoot, Virtualized: req.Virtualized, SerialNumber: req.SerialNumber,
		GPUs: req.GPUs, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		s.storeErr(w, r, "node for twin "+strconv.FormatUint(req.TwinID, 10), err)
		return
	}
	if k, ok := s.keys.get(req.TwinID); ok {
		s.owners.put(id, owner{twin: req.TwinID, key: k, hasKey: true})
	}
	reply(w, http.StatusCreated, api.NodeID{NodeID: id})
}

// nodeOwner returns the twin owning node id and its key, in one read of
// the store when not cached (a node's owner and a twin's key never change).
func (s *Server) nodeOwner(ctx context.Context, id uint64) (owner, error) {
	if o, ok := s.owners.get(id); ok {
		return o, nil
	}
	t, key, err := s.st.NodeOwner(ctx, id)
	if err != nil {
		return owner{}, err
	}
	o := owner{twin: t}
	if k, err := base64.StdEncoding.DecodeString(key); err == nil && len(k) == ed25519.PublicKeySize {
		copy(o.key[:], k)
		o.hasKey = true
	}
	s.owners.put(id, o)
	return o, nil
}

// owner is who owns a node, with the twin's key.
type owner struct {
	twin   uint64
	key    [ed25519.PublicKeySize]byte
	hasKey bool
}

// ownNode authenticates r and checks the signer owns node id.
func (s *Server) ownNode(w http.ResponseWriter, r *http.Request) (id uint64, body []byte, ok bool) {
	id, ok = pathID(w, r, "node_id")
	if !ok {
		return 0, nil, false
	}
	// The owner's key comes with the owner: a node reporting its uptime
	// costs one read of the store, or none when cached. An unknown node is
	// answered after authentication, as before.
	o, ownerErr := s.nodeOwner(r.Context(), id)
	var hint *owner
	if ownerErr == nil && o.hasKey {
		hint = &o
	}
	body, signer, ok := s.authBodyHint(w, r, hint)
	if !ok {
		return 0, nil, false
	}
	if ownerErr != nil {
		s.storeErr(w, r, "node", ownerErr)
		return 0, nil, false
	}
	if o.twin != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own node "+strconv.FormatUint(id, 10))
		return 0, nil, false
	}
	return id, body, true
}

func (s *Server) updateNode(w http.ResponseWriter, r *http.Request) {
	id, body, ok := s.ownNode(w, r)
	if !ok {
		return
	}
	var req api.UpdateNode
	if !decode(w, body, &req) {
		return
	}
	if err := validNode(req.FarmID, req.Resources, req.Interfaces, req.SerialNumber); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.CheckGPUs(req.GPUs); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateNode(r.Context(), id, req, s.now()); err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "node updated successfully"})
}

// approve is the gridnode extension POST /nodes/{node_id}/approve: the
// owner of the node's farm approves it.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "node_id")
	if !ok {
		return
	}
	_, signer, ok := s.authBody(w, r)
	if !ok {
		return
	}
	n, err := s.st.Node(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	f, err := s.st.Farm(r.Context(), n.FarmID)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	if f.TwinID != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own farm "+strconv.FormatUint(f.FarmID, 10)+" of node "+strconv.FormatUint(id, 10))
		return
	}
	if err := s.st.ApproveNode(r.Context(), id, s.now()); err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"node_id": id, "approved": true})
}
