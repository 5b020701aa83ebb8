package registrar

import (
	"net/http"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// uptime records a node's uptime report: POST /nodes/{node_id}/uptime.
func (s *Server) uptime(w http.ResponseWriter, r *http.Request) {
	id, body, ok := s.ownNode(w, r)
	if !ok {
		return
	}
	var req api.Uptime
	if !decode(w, body, &req) {
		return
	}
	now := s.now()
	if d := now.Unix() - req.Timestamp; d > int64(api.UptimeWindow/time.Second) || d < -int64(api.UptimeWindow/time.Second) {
		reply(w, http.StatusBadRequest, api.Error{Error: "timestamp outside acceptable window", ServerTime: now.Unix()})
		return
	}
	if req.Uptime > 1<<62 {
		fail(w, http.StatusBadRequest, "uptime out of range")
		return
	}
	if err := req.OSState.Check(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	// The store commits the report with the other writes under way
	// (store/groupcommit) and answers once it is committed.
	if err := s.st.ReportUptime(r.Context(), []store.Uptime{{NodeID: id, Uptime: req.Uptime, At: now, OS: req.OSState}}); err != nil {
		s.storeErr(w, r, "uptime report", err)
		return
	}
	reply(w, http.StatusCreated, map[string]string{"message": "uptime reported successfully"})
}
