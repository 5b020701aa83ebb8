package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// rawBody is a request body sent byte for byte rather than JSON-encoded:
// a signed document is stored as it was sent.
type rawBody []byte

// ChannelAnswer is the registrar's answer to a channel poll.
type ChannelAnswer struct {
	// State is the document and the hold; empty when NotModified.
	State doc.ChannelState
	// ETag identifies this state: send it back to poll cheaply.
	ETag string
	// NotModified: the state is still the one the ETag given named.
	NotModified bool
}

// Channel polls channel name (GET, public). With etag (from an earlier
// answer) an unchanged state is answered NotModified, without a body: what
// a million nodes polling a channel cost the registrar. A channel the
// registrar does not have is a 404 (IsNotFound).
func (c *Client) Channel(ctx context.Context, name, etag string) (*ChannelAnswer, error) {
	path := doc.ChannelPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("registrar GET %s: %w", path, err)
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &NetError{Base: strings.TrimSuffix(c.base, api.Prefix), Method: http.MethodGet, Path: path, Err: err}
	}
	defer resp.Body.Close()
	c.clock.observeDate(resp.Header.Get("Date"))
	a := &ChannelAnswer{ETag: resp.Header.Get("ETag")}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		a.NotModified = true
		if a.ETag == "" {
			a.ETag = etag
		}
		return a, nil
	case resp.StatusCode != http.StatusOK:
		return nil, c.answerError(http.MethodGet, path, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 2*doc.MaxEnvelope)).Decode(&a.State); err != nil {
		return nil, fmt.Errorf("registrar GET %s: decoding answer: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return a, nil
}

// PutChannel stores a signed channel document (doc.SignChannel's envelope,
// sent byte for byte) as the registrar's admin twin: the client's key and
// twin must be the admin's.
func (c *Client) PutChannel(ctx context.Context, name string, envelope []byte) error {
	return c.do(ctx, http.MethodPut, doc.ChannelPath(name), nil, rawBody(envelope), nil, true)
}

// ChannelStatus returns a channel's rollout: nodes per version, the wave
// in force, the hold and why.
func (c *Client) ChannelStatus(ctx context.Context, name string) (api.ChannelStatus, error) {
	var st api.ChannelStatus
	err := c.do(ctx, http.MethodGet, api.ChannelStatusPath(name), nil, nil, &st, false)
	return st, err
}

// PauseChannel pauses a channel's rollout where it is, as the admin twin.
func (c *Client) PauseChannel(ctx context.Context, name, reason string) (api.ChannelStatus, error) {
	var st api.ChannelStatus
	err := c.do(ctx, http.MethodPost, api.ChannelPausePath(name), nil, api.PauseRequest{Reason: reason}, &st, true)
	return st, err
}

// ResumeChannel lifts the pause of a channel's rollout, as the admin twin;
// the rollout stays capped at the share it had reached.
func (c *Client) ResumeChannel(ctx context.Context, name string) (api.ChannelStatus, error) {
	var st api.ChannelStatus
	err := c.do(ctx, http.MethodPost, api.ChannelResumePath(name), nil, struct{}{}, &st, true)
	return st, err
}
