package registrar

import (
	"errors"
	"net/http"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

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
	if err := s.batch.submit(r.Context(), store.Uptime{NodeID: id, Uptime: req.Uptime, At: now}); err != nil {
		if errors.Is(err, errClosed) {
			fail(w, http.StatusServiceUnavailable, "registrar is shutting down; retry later")
			return
		}
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusCreated, map[string]string{"message": "uptime reported successfully"})
}
