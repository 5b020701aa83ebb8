// Package nodeclient talks to a node's deployments API (node/deployment)
// for a user: it signs every request with the user's key and twin
// (grid/api's strict scheme), pins images where it can reach their
// registry, waits for a deployment to run, and writes tables. `gridnode
// deploy`, `deployments`, `logs` and `undeploy` are thin commands over it.
package nodeclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/node/deployment"
)

// DefaultPort is the node's status port, where its API is.
const DefaultPort = "9100"

// NodeURL makes a node's base URL from what a user types: HOST,
// HOST:PORT or http(s)://HOST[:PORT] (the port defaults to 9100).
func NodeURL(s string) (string, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s == "" {
		return "", fmt.Errorf("no node: give --node http://HOST[:PORT]")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("node %q: want http://HOST[:PORT]", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), DefaultPort)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Client is a user's client of one node.
type Client struct {
	base string
	key  ed25519.PrivateKey
	twin uint64
	hc   *http.Client
	// Now is the clock requests are signed with.
	Now func() time.Time
}

// New returns a client of the node at node (see NodeURL) signing as twin
// with key.
func New(node string, key ed25519.PrivateKey, twin uint64) (*Client, error) {
	base, err := NodeURL(node)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, key: key, twin: twin, hc: &http.Client{}, Now: time.Now}, nil
}

// Error is an answer other than 2xx.
type Error struct {
	Status int
	Body   deployment.Error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("the node answered %d: %s", e.Status, e.Body.Error)
	if e.Body.Need != nil && e.Body.Free != nil {
		need, free := e.Body.Need, e.Body.Free
		msg += fmt.Sprintf(" (asked: %s CPU, %s memory, %s disk, %d GPUs; free: %s CPU, %s memory, %s disk, %d GPUs)",
			deployment.MilliCPU(need.MilliCPU), deployment.Size(need.Memory), deployment.Size(need.Disk), need.GPUs,
			deployment.MilliCPU(free.MilliCPU), deployment.Size(free.Memory), deployment.Size(free.Disk), free.GPUs)
	}
	return msg
}

// do sends a signed request and decodes a 2xx JSON answer into out (or
// returns the body to the caller when out is an *io.ReadCloser).
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	xa, xs := api.StrictAuthHeaders(c.key, c.twin, c.Now(), nonce, method, req.URL.RequestURI(), body)
	req.Header.Set(api.HeaderAuth, xa)
	req.Header.Set(api.HeaderAuthStrict, xs)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("node %s: %w (is the node up, and --node right?)", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, &e.Body) != nil || e.Body.Error == "" {
			e.Body.Error = strings.TrimSpace(string(b))
		}
		return e
	}
	if rc, ok := out.(*io.ReadCloser); ok {
		*rc = resp.Body
		return nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("node %s: reading the answer to %s %s: %w", c.base, method, path, err)
	}
	return nil
}

// Deploy sends d (its canonical JSON) and returns the node's status of it.
func (c *Client) Deploy(ctx context.Context, d deployment.Deployment) (deployment.Status, error) {
	body, err := d.Canonical()
	if err != nil {
		return deployment.Status{}, err
	}
	var st deployment.Status
	return st, c.do(ctx, http.MethodPost, deployment.Path, body, &st)
}

// Status is the deployment name.
func (c *Client) Status(ctx context.Context, name string) (deployment.Status, error) {
	var st deployment.Status
	return st, c.do(ctx, http.MethodGet, deployment.PathOf(name), nil, &st)
}

// List is the twin's deployments on the node (every one for the farm's
// owner).
func (c *Client) List(ctx context.Context) ([]deployment.Status, error) {
	var l []deployment.Status
	return l, c.do(ctx, http.MethodGet, deployment.Path, nil, &l)
}

// Undeploy removes the deployment name; purge also its volumes.
func (c *Client) Undeploy(ctx context.Context, name string, purge bool) (deployment.Status, error) {
	p := deployment.PathOf(name)
	if purge {
		p += "?purge=1"
	}
	var st deployment.Status
	return st, c.do(ctx, http.MethodDelete, p, nil, &st)
}

// Logs returns a workload's log: its last tail bytes (0: all the node
// keeps) and, with follow, what it writes next, until ctx ends.
func (c *Client) Logs(ctx context.Context, name, workload string, tail int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if tail > 0 {
		q.Set("tail", strconv.FormatInt(tail, 10))
	}
	if follow {
		q.Set("follow", "1")
	}
	p := deployment.LogsPath(name, workload)
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var rc io.ReadCloser
	return rc, c.do(ctx, http.MethodGet, p, nil, &rc)
}
