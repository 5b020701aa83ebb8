// Package client is a Go client of the grid registrar API (ThreeFold
// node-registrar v1, see shared/registrar-api.md). The node's registrar
// module, the farmer CLI and the simulator all use it.
//
// Signed requests carry a timestamp the server checks against its own clock
// (±2 s for account creation, 60 s for X-Auth challenges), and a node that has
// just booted may not have a correct clock yet. The client therefore keeps an
// offset to the server's clock, learned from every answer's Date header and
// from the server_time of a "timestamp outside acceptable window" error, and
// signs with the corrected time.
//
// The project's registrar names the extensions it speaks on every answer
// (api.HeaderExtensions); the client reads them from each answer and uses
// them without being told: when the registrar requires strict signatures
// (strict-auth) every signed request carries X-Auth-Strict too, over its
// method, path, body and a fresh nonce, and list walks page by key (after).
// A registrar that names none (the reference) gets the reference API: plain
// X-Auth, page and size.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/api"
)

// Options tune a Client. The zero value is fine.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	// The simulator shares one among many Clients.
	HTTPClient *http.Client
	// Clock holds the offset to the server's clock; nil means a Clock of
	// the Client's own. Clients talking to the same server may share one.
	Clock *Clock
	// UserAgent is sent with every request; empty means "gridnode".
	UserAgent string
}

// Client talks to one registrar with one key. It is safe for concurrent use.
type Client struct {
	base  string // ends in /api/v1, no trailing slash
	key   ed25519.PrivateKey
	pub   string // base64 of the public key, as it travels
	hc    *http.Client
	clock *Clock
	ua    string
	twin  atomic.Uint64
	// auth is the last X-Auth made: its challenge covers a second, so
	// requests within that second reuse it instead of signing again.
	auth atomic.Pointer[signedAuth]
	// ext is what the registrar's last answer said it speaks, shared by
	// the clients WithKey makes.
	ext *extensions
}

// extensions holds the value of the registrar's last api.HeaderExtensions.
type extensions struct{ v atomic.Pointer[http.Header] }

func (e *extensions) observe(resp *http.Response) {
	if resp.StatusCode >= 500 {
		return // a proxy's answer, maybe, not the registrar's
	}
	h := http.Header{api.HeaderExtensions: resp.Header.Values(api.HeaderExtensions)}
	e.v.Store(&h)
}

func (e *extensions) has(ext string) bool {
	h := e.v.Load()
	return h != nil && api.HasExtension(*h, ext)
}

type signedAuth struct {
	ts     int64
	twin   uint64
	header string
}

// authHeader is the X-Auth value for twin now, made once a second, and the
// unix time it was signed for.
func (c *Client) authHeader(twin uint64) (string, int64) {
	now := c.clock.Now()
	if a := c.auth.Load(); a != nil && a.ts == now.Unix() && a.twin == twin {
		return a.header, a.ts
	}
	h := api.AuthHeader(c.key, twin, now)
	c.auth.Store(&signedAuth{ts: now.Unix(), twin: twin, header: h})
	return h, now.Unix()
}

// sign sets the X-Auth of req, and X-Auth-Strict when strict, for twin.
func (c *Client) sign(req *http.Request, twin uint64, body []byte, strict bool) error {
	xa, ts := c.authHeader(twin)
	req.Header.Set(api.HeaderAuth, xa)
	if !strict {
		return nil
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("registrar %s %s: a nonce: %w", req.Method, req.URL.Path, err)
	}
	req.Header.Set(api.HeaderAuthStrict, api.StrictHeader(c.key, twin, ts, nonce, req.Method, req.URL.RequestURI(), body))
	return nil
}

// Extension says whether the registrar's last answer named ext (one of
// api.ExtStrictAuth, api.ExtAfter) among the extensions it speaks.
func (c *Client) Extension(ext string) bool { return c.ext.has(ext) }

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// New returns a client of the registrar at baseURL (http://host:port, without
// /api/v1: the client adds it) signing with key. key may be nil for the
// read-only routes.
func New(baseURL string, key ed25519.PrivateKey, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registrar URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", baseURL)
	}
	base := strings.TrimRight(u.String(), "/")
	// Accept a URL that already names the API prefix, as farmers paste it.
	base = strings.TrimSuffix(base, api.Prefix)
	c := &Client{base: base + api.Prefix, key: key, hc: opts.HTTPClient, clock: opts.Clock, ua: opts.UserAgent, ext: &extensions{}}
	if c.hc == nil {
		c.hc = defaultHTTP
	}
	if c.clock == nil {
		c.clock = &Clock{}
	}
	if c.ua == "" {
		c.ua = "gridnode"
	}
	if key != nil {
		c.pub = api.PublicKey(key.Public().(ed25519.PublicKey))
	}
	return c, nil
}

// WithKey returns a client of the same registrar, HTTP client and clock that
// signs with another key, and has no twin yet. It is cheap: the simulator
// makes one per virtual node.
func (c *Client) WithKey(key ed25519.PrivateKey) *Client {
	n := &Client{base: c.base, key: key, hc: c.hc, clock: c.clock, ua: c.ua, ext: c.ext}
	if key != nil {
		n.pub = api.PublicKey(key.Public().(ed25519.PublicKey))
	}
	return n
}

// BaseURL is the API root the client talks to (ending in /api/v1).
func (c *Client) BaseURL() string { return c.base }

// PublicKey is the client's public key as it travels (base64).
func (c *Client) PublicKey() string { return c.pub }

// Clock is the client's view of the server's clock.
func (c *Client) Clock() *Clock { return c.clock }

// Now is the current time on the server's clock, as far as the client knows.
func (c *Client) Now() time.Time { return c.clock.Now() }

// Twin is the twin id the client signs for, set by EnsureAccount or SetTwin;
// 0 when unknown.
func (c *Client) Twin() uint64 { return c.twin.Load() }

// SetTwin sets the twin id the client signs for (for a key whose account is
// known already).
func (c *Client) SetTwin(id uint64) { c.twin.Store(id) }

// Error is a non-2xx answer of the registrar.
type Error struct {
	Method, Path string
	Status       int
	// Message is the server's "error" field, or the start of the body when
	// it is not JSON.
	Message    string
	ServerTime int64
	// Header is the answer's header: its Retry-After says when a registrar
	// shedding load (429) or short of its database (503) wants the request
	// again (see Wait).
	Header http.Header
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("registrar %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// NetError is a request that got no answer: the registrar is unreachable,
// or did not answer in time.
type NetError struct {
	Base, Method, Path string
	Err                error // as net/http returned it
}

func (e *NetError) Error() string {
	var ue *url.Error
	reason := e.Err
	if errors.As(e.Err, &ue) {
		reason = ue.Err // without the URL, said already
	}
	return fmt.Sprintf("registrar %s unreachable: %v", e.Base, reason)
}

func (e *NetError) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status of a registrar error, or 0 when err is not
// an answer of the registrar (a network failure, for example).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound says whether err is a 404 of the registrar.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// ErrNoNode is returned by NodeByTwin when the twin has no node.
var ErrNoNode = &Error{Method: http.MethodGet, Path: "/nodes", Status: http.StatusNotFound, Message: "no node for this twin"}

// windowError is the message of the registrar's answer to a timestamp out of
// its window.
const windowError = "timestamp outside acceptable window"

// do sends one request. in, when not nil, is sent as JSON; out, when not nil,
// receives the JSON answer. auth signs the request for the client's twin:
// with X-Auth, and X-Auth-Strict when the registrar requires it (an answer
// said so). A request refused 401 by a registrar that says, in that very
// answer, that it requires strict signatures is signed strictly and sent
// once more.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, auth bool) error {
	var body []byte
	if raw, ok := in.(rawBody); ok {
		body = raw // sent as it is (a signed document)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("registrar %s %s: encoding request: %w", method, path, err)
		}
		body = b
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var twin uint64
	if auth {
		twin = c.twin.Load()
		if c.key == nil || twin == 0 {
			return fmt.Errorf("registrar %s %s: no account to sign with (call EnsureAccount first)", method, path)
		}
	}
	strict := auth && c.ext.has(api.ExtStrictAuth)
	var resp *http.Response
	for {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("registrar %s %s: %w", method, path, err)
		}
		req.Header.Set("User-Agent", c.ua)
		req.Header.Set("Accept", "application/json")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth {
			if err := c.sign(req, twin, body, strict); err != nil {
				return err
			}
		}
		resp, err = c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &NetError{Base: strings.TrimSuffix(c.base, api.Prefix), Method: method, Path: path, Err: err}
		}
		c.ext.observe(resp)
		if !auth || strict || resp.StatusCode != http.StatusUnauthorized || !c.ext.has(api.ExtStrictAuth) {
			break
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		strict = true
	}
	defer resp.Body.Close()
	c.clock.observeDate(resp.Header.Get("Date"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.answerError(method, path, resp)
	}
	// Read at most MaxAnswer (and one byte more, to tell): a registrar, or
	// whoever answers in its name, cannot make the client hold more.
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return &NetError{Base: strings.TrimSuffix(c.base, api.Prefix), Method: method, Path: path, Err: err}
	}
	if len(b) > MaxAnswer {
		return fmt.Errorf("registrar %s %s: the answer is over %d MiB; refused (is the URL a registrar's?)", method, path, MaxAnswer>>20)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("registrar %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// answerError reads a non-2xx answer into an Error.
func (c *Client) answerError(method, path string, resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	e := &Error{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header}
	var ae api.Error
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		e.Message, e.ServerTime = ae.Error, ae.ServerTime
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	if e.ServerTime != 0 {
		// The server says our clock is out of its window: take its
		// time as it is, whatever the Date header suggested.
		c.clock.SetOffset(time.Unix(e.ServerTime, 0).Add(500 * time.Millisecond).Sub(c.clock.local()))
	}
	return e
}

// MaxAnswer is the most bytes the client reads of one answer: a page of
// the largest listing the registrar serves is far smaller.
const MaxAnswer = 8 << 20

// AccountByKey returns the account of the base64 public key pub.
func (c *Client) AccountByKey(ctx context.Context, pub string) (api.Account, error) {
	var a api.Account
	err := c.do(ctx, http.MethodGet, "/accounts", url.Values{"public_key": {pub}}, nil, &a, false)
	return a, err
}

// Account returns the account of twin.
func (c *Client) Account(ctx context.Context, twin uint64) (api.Account, error) {
	var a api.Account
	err := c.do(ctx, http.MethodGet, "/accounts", url.Values{"twin_id": {strconv.FormatUint(twin, 10)}}, nil, &a, false)
	return a, err
}

// CreateAccount creates the account of the client's key. When the server
// refuses the timestamp, the client takes the server's time and tries once
// more. A 409 means the key has an account already.
func (c *Client) CreateAccount(ctx context.Context) (api.Account, error) {
	if c.key == nil {
		return api.Account{}, errors.New("registrar: no key to create an account with")
	}
	var a api.Account
	err := c.do(ctx, http.MethodPost, "/accounts", nil, api.NewAccount(c.key, c.clock.Now()), &a, false)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest && strings.Contains(e.Message, windowError) {
		// do has taken server_time (or the Date header) into the clock.
		err = c.do(ctx, http.MethodPost, "/accounts", nil, api.NewAccount(c.key, c.clock.Now()), &a, false)
	}
	if err == nil {
		c.twin.Store(a.TwinID)
	}
	return a, err
}

// EnsureAccount returns the account of the client's key, creating it when
// the registrar has none, and remembers its twin id for signing.
func (c *Client) EnsureAccount(ctx context.Context) (api.Account, error) {
	if c.key == nil {
		return api.Account{}, errors.New("registrar: no key to find an account for")
	}
	a, err := c.AccountByKey(ctx, c.pub)
	if err == nil {
		c.twin.Store(a.TwinID)
		return a, nil
	}
	if !IsNotFound(err) {
		return a, err
	}
	a, err = c.CreateAccount(ctx)
	if StatusOf(err) == http.StatusConflict {
		// Created by a concurrent request of ours (a retry after a lost answer).
		a, err = c.AccountByKey(ctx, c.pub)
		if err == nil {
			c.twin.Store(a.TwinID)
		}
	}
	return a, err
}

// CreateFarm creates a farm owned by the client's twin (f.TwinID, when zero)
// and returns its id.
func (c *Client) CreateFarm(ctx context.Context, f api.CreateFarm) (uint64, error) {
	if f.TwinID == 0 {
		f.TwinID = c.twin.Load()
	}
	var id api.FarmID
	err := c.do(ctx, http.MethodPost, "/farms", nil, f, &id, true)
	return id.FarmID, err
}

// FarmFilter selects farms; zero fields do not filter.
type FarmFilter struct {
	FarmName   string
	FarmID     uint64
	TwinID     uint64
	Page, Size int
	// After asks for the farms after this id (the extension api.ExtAfter:
	// a registrar without it ignores it and answers the first page).
	After uint64
}

// Farms lists farms.
func (c *Client) Farms(ctx context.Context, f FarmFilter) ([]api.Farm, error) {
	q := url.Values{}
	if f.FarmName != "" {
		q.Set("farm_name", f.FarmName)
	}
	setUint(q, "farm_id", f.FarmID)
	setUint(q, "twin_id", f.TwinID)
	setInt(q, "page", f.Page)
	setInt(q, "size", f.Size)
	setUint(q, "after", f.After)
	var farms []api.Farm
	err := c.do(ctx, http.MethodGet, "/farms", q, nil, &farms, false)
	return farms, err
}

// Farm returns one farm.
func (c *Client) Farm(ctx context.Context, id uint64) (api.Farm, error) {
	var f api.Farm
	err := c.do(ctx, http.MethodGet, "/farms/"+strconv.FormatUint(id, 10), nil, nil, &f, false)
	return f, err
}

// NodeFilter selects nodes; zero fields do not filter.
type NodeFilter struct {
	NodeID, FarmID, TwinID uint64
	// Online, when not nil, selects online (true) or offline (false) nodes.
	Online *bool
	// LastSeen selects nodes seen within that many minutes.
	LastSeen   int
	Page, Size int
	// After asks for the nodes after this id (api.ExtAfter, as FarmFilter's).
	After uint64
}

// Nodes lists nodes.
func (c *Client) Nodes(ctx context.Context, f NodeFilter) ([]api.Node, error) {
	q := url.Values{}
	setUint(q, "node_id", f.NodeID)
	setUint(q, "farm_id", f.FarmID)
	setUint(q, "twin_id", f.TwinID)
	if f.Online != nil {
		q.Set("online", strconv.FormatBool(*f.Online))
	}
	setInt(q, "last_seen", f.LastSeen)
	setInt(q, "page", f.Page)
	setInt(q, "size", f.Size)
	setUint(q, "after", f.After)
	var nodes []api.Node
	err := c.do(ctx, http.MethodGet, "/nodes", q, nil, &nodes, false)
	return nodes, err
}

// Node returns one node.
func (c *Client) Node(ctx context.Context, id uint64) (api.Node, error) {
	var n api.Node
	err := c.do(ctx, http.MethodGet, "/nodes/"+strconv.FormatUint(id, 10), nil, nil, &n, false)
	return n, err
}

// NodeByTwin returns the node of twin, or ErrNoNode (a 404) when it has none.
func (c *Client) NodeByTwin(ctx context.Context, twin uint64) (api.Node, error) {
	nodes, err := c.Nodes(ctx, NodeFilter{TwinID: twin})
	if IsNotFound(err) {
		// The reference answers an empty search with 404 on some versions.
		return api.Node{}, ErrNoNode
	}
	if err != nil {
		return api.Node{}, err
	}
	for _, n := range nodes {
		if n.TwinID == twin {
			return n, nil
		}
	}
	return api.Node{}, ErrNoNode
}

// CreateNode registers the node of the client's twin (n.TwinID, when zero)
// and returns its id. A 409 means the twin has a node already.
func (c *Client) CreateNode(ctx context.Context, n api.CreateNode) (uint64, error) {
	if n.TwinID == 0 {
		n.TwinID = c.twin.Load()
	}
	var id api.NodeID
	err := c.do(ctx, http.MethodPost, "/nodes", nil, n, &id, true)
	return id.NodeID, err
}

// UpdateNode replaces what node id reports.
func (c *Client) UpdateNode(ctx context.Context, id uint64, n api.UpdateNode) error {
	return c.do(ctx, http.MethodPatch, "/nodes/"+strconv.FormatUint(id, 10), nil, n, nil, true)
}

// ReportUptime reports that node id has been up for uptime, stamped with the
// server's clock as the client knows it.
func (c *Client) ReportUptime(ctx context.Context, id uint64, uptime time.Duration) error {
	return c.ReportUptimeOS(ctx, id, uptime, api.OSState{})
}

// ReportUptimeOS is ReportUptime with the release the node runs (the
// OSState extension; empty fields are not sent).
func (c *Client) ReportUptimeOS(ctx context.Context, id uint64, uptime time.Duration, os api.OSState) error {
	u := api.Uptime{Uptime: uint64(uptime / time.Second), Timestamp: c.clock.Now().Unix(), OSState: os}
	return c.do(ctx, http.MethodPost, "/nodes/"+strconv.FormatUint(id, 10)+"/uptime", nil, u, nil, true)
}

// ApproveNode approves node id (POST /nodes/:id/approve, an extension of the
// project's registrar: the farm's owner signs).
func (c *Client) ApproveNode(ctx context.Context, id uint64) error {
	return c.do(ctx, http.MethodPost, "/nodes/"+strconv.FormatUint(id, 10)+"/approve", nil, struct{}{}, nil, true)
}

// ZOSVersion returns the OS version the grid advertises.
func (c *Client) ZOSVersion(ctx context.Context) (api.ZOSVersion, error) {
	var s string
	var v api.ZOSVersion
	if err := c.do(ctx, http.MethodGet, "/zos/version", nil, nil, &s, false); err != nil {
		return v, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some registrars answer the JSON itself rather than its base64.
		b = []byte(s)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("registrar GET /zos/version: decoding %q: %w", s, err)
	}
	return v, nil
}

func setUint(q url.Values, k string, v uint64) {
	if v != 0 {
		q.Set(k, strconv.FormatUint(v, 10))
	}
}

func setInt(q url.Values, k string, v int) {
	if v != 0 {
		q.Set(k, strconv.Itoa(v))
	}
}
