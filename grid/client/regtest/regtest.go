// Package regtest is a small, strict, in-memory registrar for tests of the
// registrar's clients (grid/client, modules/registrar, grid/farm,
// grid/simulate). It follows shared/registrar-api.md: it checks account
// signatures and their ±2 s window, X-Auth signatures, their age and
// ownership, and answers errors as the reference does. It is not the grid's
// registrar (that is grid/registrar): it keeps everything in maps and lets a
// test break it on purpose (Fail, Now).
package regtest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
)

// Registrar is the in-memory registrar. Use New, then Handler or Start.
type Registrar struct {
	mu       sync.Mutex
	accounts map[uint64]*api.Account
	byKey    map[string]uint64
	farms    map[uint64]*api.Farm
	nodes    map[uint64]*api.Node
	byTwin   map[uint64]uint64
	uptimes  map[uint64][]api.Uptime
	calls    map[string]int

	// Now is the server's clock; nil means time.Now. Set it before use.
	Now func() time.Time
	// Fail, when set, is asked before every request; a non-zero status is
	// answered with msg instead of serving the request.
	Fail func(r *http.Request) (status int, msg string)
	// SlashIPs makes node answers carry "ips" as one "/"-joined string and
	// the interfaces under "Interfaces", as the reference server does.
	SlashIPs bool
	// Version is what GET /zos/version advertises.
	Version api.ZOSVersion
}

// New returns an empty registrar.
func New() *Registrar {
	return &Registrar{
		accounts: map[uint64]*api.Account{},
		byKey:    map[string]uint64{},
		farms:    map[uint64]*api.Farm{},
		nodes:    map[uint64]*api.Node{},
		byTwin:   map[uint64]uint64{},
		uptimes:  map[uint64][]api.Uptime{},
		calls:    map[string]int{},
		Version:  api.ZOSVersion{Version: "v0.0.0-test", SafeToUpgrade: true},
	}
}

// Start serves the registrar on a loopback httptest server; the caller
// closes it.
func (s *Registrar) Start() *httptest.Server { return httptest.NewServer(s.Handler()) }

func (s *Registrar) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Calls is how many requests the route pattern (e.g. "POST /nodes") served,
// failed ones included.
func (s *Registrar) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// Node returns a copy of node id.
func (s *Registrar) Node(id uint64) (api.Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		return api.Node{}, false
	}
	return *n, true
}

// NodeCount is the number of nodes.
func (s *Registrar) NodeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}

// AccountCount is the number of accounts.
func (s *Registrar) AccountCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accounts)
}

// Uptimes returns the uptime reports node id made.
func (s *Registrar) Uptimes(id uint64) []api.Uptime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.Uptime(nil), s.uptimes[id]...)
}

// UptimeCount is the number of uptime reports of all nodes.
func (s *Registrar) UptimeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.uptimes {
		n += len(u)
	}
	return n
}

// Handler serves every route under /api/v1 and /v1.
func (s *Registrar) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]func(http.ResponseWriter, *http.Request){
		"GET /accounts":            s.getAccount,
		"POST /accounts":           s.createAccount,
		"GET /farms":               s.listFarms,
		"GET /farms/{id}":          s.getFarm,
		"POST /farms":              s.createFarm,
		"GET /nodes":               s.listNodes,
		"GET /nodes/{id}":          s.getNode,
		"POST /nodes":              s.createNode,
		"PATCH /nodes/{id}":        s.updateNode,
		"POST /nodes/{id}/uptime":  s.uptime,
		"POST /nodes/{id}/approve": s.approve,
		"GET /zos/version":         s.version,
	}
	for pattern, h := range routes {
		method, path, _ := strings.Cut(pattern, " ")
		h := h
		wrapped := func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.calls[pattern]++
			s.mu.Unlock()
			if s.Fail != nil {
				if code, msg := s.Fail(r); code != 0 {
					fail(w, code, msg)
					return
				}
			}
			h(w, r)
		}
		mux.HandleFunc(method+" "+api.Prefix+path, wrapped)
		mux.HandleFunc(method+" "+api.AltPrefix+path, wrapped)
	}
	return mux
}

func fail(w http.ResponseWriter, code int, msg string) {
	reply(w, code, api.Error{Error: msg})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := d.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid id")
		return 0, false
	}
	return id, true
}

// auth checks X-Auth and returns the signing twin. Call with s.mu held.
func (s *Registrar) auth(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	challenge, ts, twin, sig, err := api.ParseAuthHeader(r.Header.Get(api.HeaderAuth))
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid authentication header")
		return 0, false
	}
	age := s.now().Sub(time.Unix(ts, 0))
	if age > api.ChallengeMaxAge {
		fail(w, http.StatusUnauthorized, "Expired challenge")
		return 0, false
	}
	if age < -api.ChallengeMaxAge {
		fail(w, http.StatusUnauthorized, "challenge from the future")
		return 0, false
	}
	a, ok := s.accounts[twin]
	if !ok {
		fail(w, http.StatusUnauthorized, "unknown twin")
		return 0, false
	}
	pub, _ := base64.StdEncoding.DecodeString(a.PublicKey)
	if !ed25519.Verify(pub, challenge, sig) {
		fail(w, http.StatusUnauthorized, "invalid signature")
		return 0, false
	}
	return twin, true
}

// authAs authenticates r and wants twin (the body's twin_id) to be its signer.
func (s *Registrar) authAs(w http.ResponseWriter, r *http.Request, twin uint64) bool {
	signer, ok := s.auth(w, r)
	if ok && signer != twin {
		fail(w, http.StatusUnauthorized, "twin_id does not match the signer")
		return false
	}
	return ok
}

func (s *Registrar) getAccount(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	tw, pk := q.Get("twin_id"), q.Get("public_key")
	if (tw == "") == (pk == "") {
		fail(w, http.StatusBadRequest, "either twin_id or public_key must be provided")
		return
	}
	var id uint64
	if tw != "" {
		var err error
		if id, err = strconv.ParseUint(tw, 10, 64); err != nil {
			fail(w, http.StatusBadRequest, "invalid twin_id")
			return
		}
	} else {
		id = s.byKey[pk]
	}
	a, ok := s.accounts[id]
	if !ok {
		fail(w, http.StatusNotFound, "account not found")
		return
	}
	reply(w, http.StatusOK, a)
}

func (s *Registrar) createAccount(w http.ResponseWriter, r *http.Request) {
	var in api.CreateAccount
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if d := now.Sub(time.Unix(in.Timestamp, 0)); d > api.AccountWindow || d < -api.AccountWindow {
		reply(w, http.StatusBadRequest, api.Error{Error: "timestamp outside acceptable window", ServerTime: now.Unix()})
		return
	}
	pub, err := base64.StdEncoding.DecodeString(in.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		fail(w, http.StatusBadRequest, "invalid public key")
		return
	}
	sig, err := base64.StdEncoding.DecodeString(in.Signature)
	if err != nil || !ed25519.Verify(pub, api.AccountMessage(in.Timestamp, in.PublicKey), sig) {
		fail(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	if _, ok := s.byKey[in.PublicKey]; ok {
		fail(w, http.StatusConflict, "account with this public key already exists")
		return
	}
	id := uint64(len(s.accounts) + 1)
	a := &api.Account{TwinID: id, Relays: in.Relays, RMBEncKey: in.RMBEncKey, CreatedAt: now, UpdatedAt: now, PublicKey: in.PublicKey}
	if a.Relays == nil {
		a.Relays = []string{}
	}
	s.accounts[id] = a
	s.byKey[in.PublicKey] = id
	reply(w, http.StatusCreated, a)
}

func (s *Registrar) listFarms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.Farm{}
	for i := uint64(1); i <= uint64(len(s.farms)); i++ {
		f := s.farms[i]
		if (q.Get("farm_name") != "" && q.Get("farm_name") != f.FarmName) ||
			!matchID(q.Get("farm_id"), f.FarmID) || !matchID(q.Get("twin_id"), f.TwinID) {
			continue
		}
		out = append(out, *f)
	}
	reply(w, http.StatusOK, page(out, q.Get("page"), q.Get("size")))
}

func matchID(q string, id uint64) bool {
	return q == "" || q == strconv.FormatUint(id, 10)
}

func page[T any](l []T, p, sz string) []T {
	pg, _ := strconv.Atoi(p)
	size, _ := strconv.Atoi(sz)
	if pg < 1 {
		pg = 1
	}
	if size < 1 {
		size = 50
	}
	off := (pg - 1) * size
	if off >= len(l) {
		return []T{}
	}
	return l[off:min(len(l), off+size)]
}

func (s *Registrar) getFarm(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.farms[id]
	if !ok {
		fail(w, http.StatusNotFound, "farm not found")
		return
	}
	reply(w, http.StatusOK, f)
}

func (s *Registrar) createFarm(w http.ResponseWriter, r *http.Request) {
	var in api.CreateFarm
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authAs(w, r, in.TwinID) {
		return
	}
	if api.ValidFarmName(in.FarmName) != nil {
		fail(w, http.StatusBadRequest, "farm_name must be alphanumeric, at most 40 characters")
		return
	}
	if api.ValidStellar(in.StellarAddress) != nil {
		fail(w, http.StatusBadRequest, "invalid stellar_address")
		return
	}
	for _, f := range s.farms {
		if f.FarmName == in.FarmName {
			fail(w, http.StatusConflict, "farm name already exists")
			return
		}
	}
	now := s.now()
	id := uint64(len(s.farms) + 1)
	s.farms[id] = &api.Farm{FarmID: id, FarmName: in.FarmName, TwinID: in.TwinID, StellarAddress: in.StellarAddress, Dedicated: in.Dedicated, CreatedAt: now, UpdatedAt: now}
	reply(w, http.StatusCreated, api.FarmID{FarmID: id})
}

func (s *Registrar) online(n *api.Node) bool {
	return n.LastSeen != nil && s.now().Sub(*n.LastSeen) < api.OnlineWindow
}

// nodeJSON is a node as answered, with the reference's quirks when SlashIPs.
func (s *Registrar) nodeJSON(n *api.Node) any {
	c := *n
	c.Online = s.online(n)
	if !s.SlashIPs {
		type lower struct {
			api.Node
			Interfaces []api.Interface `json:"interfaces"`
		}
		// Answer the lower-case key only ("Interfaces" stays null), so
		// clients are tested on both spellings.
		ifs := c.Interfaces
		c.Interfaces = nil
		return lower{Node: c, Interfaces: ifs}
	}
	type iface struct {
		Name string `json:"name"`
		Mac  string `json:"mac"`
		IPs  string `json:"ips"`
	}
	type ref struct {
		api.Node
		Interfaces []iface `json:"Interfaces"`
	}
	out := ref{Node: c}
	for _, i := range c.Interfaces {
		out.Interfaces = append(out.Interfaces, iface{i.Name, i.Mac, strings.Join(i.IPs, "/")})
	}
	return out
}

func (s *Registrar) listNodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for i := uint64(1); i <= uint64(len(s.nodes)); i++ {
		n := s.nodes[i]
		if !matchID(q.Get("node_id"), n.NodeID) || !matchID(q.Get("farm_id"), n.FarmID) || !matchID(q.Get("twin_id"), n.TwinID) {
			continue
		}
		if o := q.Get("online"); o != "" && (o == "true") != s.online(n) {
			continue
		}
		out = append(out, s.nodeJSON(n))
	}
	reply(w, http.StatusOK, page(append([]any{}, out...), q.Get("page"), q.Get("size")))
}

func (s *Registrar) getNode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		fail(w, http.StatusNotFound, "node not found")
		return
	}
	reply(w, http.StatusOK, s.nodeJSON(n))
}

func validNode(in api.UpdateNode) string {
	switch {
	case in.SerialNumber == "":
		return "serial_number is required"
	case len(in.Interfaces) == 0:
		return "interfaces must not be empty"
	case in.Location.Country == "" || in.Location.City == "" || in.Location.Latitude == "" || in.Location.Longitude == "":
		return "location must have country, city, latitude and longitude"
	}
	return ""
}

func (s *Registrar) createNode(w http.ResponseWriter, r *http.Request) {
	var in api.CreateNode
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authAs(w, r, in.TwinID) {
		return
	}
	if msg := validNode(api.UpdateNode{FarmID: in.FarmID, Resources: in.Resources, Location: in.Location, Interfaces: in.Interfaces, SecureBoot: in.SecureBoot, Virtualized: in.Virtualized, SerialNumber: in.SerialNumber}); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	if _, ok := s.farms[in.FarmID]; !ok {
		fail(w, http.StatusNotFound, "farm not found")
		return
	}
	if _, ok := s.byTwin[in.TwinID]; ok {
		fail(w, http.StatusConflict, "node already exists for this twin")
		return
	}
	now := s.now()
	id := uint64(len(s.nodes) + 1)
	s.nodes[id] = &api.Node{NodeID: id, FarmID: in.FarmID, TwinID: in.TwinID, Location: in.Location, Resources: in.Resources,
		Interfaces: in.Interfaces, SecureBoot: in.SecureBoot, Virtualized: in.Virtualized, SerialNumber: in.SerialNumber,
		CreatedAt: now, UpdatedAt: now}
	s.byTwin[in.TwinID] = id
	reply(w, http.StatusCreated, api.NodeID{NodeID: id})
}

// owned checks X-Auth and that the signer owns node id. Call with s.mu held.
func (s *Registrar) owned(w http.ResponseWriter, r *http.Request, id uint64) (*api.Node, bool) {
	twin, ok := s.auth(w, r)
	if !ok {
		return nil, false
	}
	n, ok := s.nodes[id]
	if !ok {
		fail(w, http.StatusNotFound, "node not found")
		return nil, false
	}
	if n.TwinID != twin {
		fail(w, http.StatusForbidden, "node does not belong to this twin")
		return nil, false
	}
	return n, true
}

func (s *Registrar) updateNode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var in api.UpdateNode
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.owned(w, r, id)
	if !ok {
		return
	}
	if msg := validNode(in); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	if _, ok := s.farms[in.FarmID]; !ok {
		fail(w, http.StatusNotFound, "farm not found")
		return
	}
	if in.FarmID != n.FarmID {
		n.Approved = false
	}
	n.FarmID, n.Resources, n.Location, n.Interfaces = in.FarmID, in.Resources, in.Location, in.Interfaces
	n.SecureBoot, n.Virtualized, n.SerialNumber = in.SecureBoot, in.Virtualized, in.SerialNumber
	n.UpdatedAt = s.now()
	reply(w, http.StatusOK, map[string]string{"message": "node updated successfully"})
}

func (s *Registrar) uptime(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var in api.Uptime
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.owned(w, r, id)
	if !ok {
		return
	}
	now := s.now()
	if d := now.Sub(time.Unix(in.Timestamp, 0)); d > api.UptimeWindow || d < -api.UptimeWindow {
		fail(w, http.StatusBadRequest, "timestamp outside acceptable window")
		return
	}
	n.LastSeen = &now
	s.uptimes[id] = append(s.uptimes[id], in)
	reply(w, http.StatusCreated, map[string]string{"message": "uptime reported successfully"})
}

func (s *Registrar) approve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	twin, ok := s.auth(w, r)
	if !ok {
		return
	}
	n, ok := s.nodes[id]
	if !ok {
		fail(w, http.StatusNotFound, "node not found")
		return
	}
	if f := s.farms[n.FarmID]; f == nil || f.TwinID != twin {
		fail(w, http.StatusForbidden, "only the farm's owner may approve its nodes")
		return
	}
	n.Approved = true
	reply(w, http.StatusOK, map[string]string{"message": "node approved"})
}

func (s *Registrar) version(w http.ResponseWriter, r *http.Request) {
	b, _ := json.Marshal(s.Version)
	reply(w, http.StatusOK, base64.StdEncoding.EncodeToString(b))
}
