package registrar

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// channelDoc signs a channel document for the tests: waves of shares, the
// first started half an hour ago, the next ones each an hour later.
func channelDoc(t testing.TB, key ed25519.PrivateKey, name string, seq uint64, version string, shares ...uint32) []byte {
	t.Helper()
	start := time.Now().Add(-30 * time.Minute)
	b, err := doc.SignChannel(doc.Channel{Channel: name, Sequence: seq, Expires: time.Now().Add(24 * time.Hour), Version: version,
		Release: "registry.example/gridnode/release@sha256:" + strings.Repeat("ab", 32),
		Waves:   doc.Schedule(start, shares, time.Hour), CanaryFarms: []uint64{7}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// channelGet polls a channel as a node does.
func (e *env) channelGet(name, etag string) (int, http.Header, doc.ChannelState) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/api/v1/channels/"+name, nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st doc.ChannelState
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, resp.Header, st
}

// TestChannels: the channel routes over each store — who may publish, what
// is refused, the document served byte for byte with an ETag, pause and
// resume, and a replica's staleness bounded by ChannelTTL.
func TestChannels(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			admin := newEnv(t, st, Config{}).account()
			relKey, _ := doc.GenerateKey()
			otherKey, _ := doc.GenerateKey()
			pub := doc.PublicKey(relKey.Public().(ed25519.PublicKey))
			cfg := Config{AdminTwin: admin.id, ReleaseKeys: []doc.PublicKey{pub}, ChannelTTL: 300 * time.Millisecond}
			e := newEnv(t, st, cfg)
			replica := newEnv(t, st, cfg) // another registrar on the same database

			d1 := channelDoc(t, relKey, "stable", 1, "1.1", 100_000, 500_000, 1_000_000)
			e.expect(404, "GET", "/api/v1/channels/stable", nil, nil, nil)
			e.expect(400, "GET", "/api/v1/channels/Stable!", nil, nil, nil)
			e.expect(401, "PUT", "/api/v1/channels/stable", d1, nil, nil)
			e.expect(403, "PUT", "/api/v1/channels/stable", d1, e.account(), nil)
			for what, c := range map[string]struct {
				status int
				body   []byte
			}{
				"another key":    {403, channelDoc(t, otherKey, "stable", 1, "1.1", 100_000)},
				"not a document": {400, []byte(`{"type":"gridnode.channel.v1"`)},
				"other channel":  {400, channelDoc(t, relKey, "beta", 1, "1.1", 100_000)},
				"release doc":    {400, must(doc.SignRelease(doc.Release{Version: "1", Files: []doc.File{{Name: "a", SHA256: strings.Repeat("0", 64)}}}, relKey))},
				// Verifies (an unknown key's signature is skipped) but is
				// not text a database keeps as sent.
				"not UTF-8": {400, bytes.Replace(d1, []byte(`"signatures":[`), []byte("\"signatures\":[{\"key\":\"\xff\",\"sig\":\"\"},"), 1)},
			} {
				if got, b := e.call("PUT", "/api/v1/channels/stable", c.body, admin, nil); got != c.status {
					t.Errorf("%s: %d %s, want %d", what, got, b, c.status)
				}
			}
			expired, _ := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: 1, Expires: time.Now().Add(-time.Minute), Version: "1.1",
				Release: "r@sha256:" + strings.Repeat("ab", 32), Waves: doc.Schedule(time.Now().Add(-time.Hour), []uint32{1}, time.Hour)}, relKey)
			if b := e.expect(400, "PUT", "/api/v1/channels/stable", expired, admin, nil); !strings.Contains(string(b), "expired") {
				t.Errorf("expired document: %s", b)
			}
			e.expect(404, "GET", "/api/v1/channels/stable", nil, nil, nil) // nothing stored
			code, _, _ := replica.channelGet("stable", "")                 // the replica caches its 404
			if code != 404 {
				t.Fatalf("replica before the first document: %d", code)
			}

			var status api.ChannelStatus
			e.expect(200, "PUT", "/api/v1/channels/stable", d1, admin, &status)
			if status.Sequence != 1 || status.Wave != 1 || status.Waves != 3 || status.WaveSharePPM != 100_000 || status.SharePPM != 100_000 || status.NextWave == nil {
				t.Fatalf("status after PUT = %+v", status)
			}
			e.expect(200, "PUT", "/v1/channels/stable", d1, admin, nil) // the same again: a retry
			b := e.expect(409, "PUT", "/api/v1/channels/stable", channelDoc(t, relKey, "stable", 1, "1.2", 100_000), admin, nil)
			if !strings.Contains(string(b), "--sequence 2") {
				t.Errorf("a stale sequence: %s", b)
			}

			code, h, cs := e.channelGet("stable", "")
			etag := h.Get("ETag")
			if code != 200 || etag == "" || !bytes.Equal(cs.Document, bytes.TrimSpace(d1)) || cs.Hold.Paused || cs.Hold.ShareCapPPM != nil {
				t.Fatalf("GET = %d %q %s %+v; want the document as sent", code, etag, cs.Document, cs.Hold)
			}
			if c, err := doc.Accept(cs.Document, []doc.PublicKey{pub}, "stable", 0, time.Now()); err != nil || c.Version != "1.1" {
				t.Fatalf("a node's check of what it got: %v", err)
			}
			if code, _, _ := e.channelGet("stable", etag); code != 304 {
				t.Fatalf("poll with the ETag: %d, want 304", code)
			}
			if code, _, _ := e.channelGet("stable", `"other", W/`+etag); code != 304 {
				t.Fatalf("poll with a list holding the ETag: %d, want 304", code)
			}

			// Pause: capped where it is (wave 1, 10 %), stopped; resume
			// lifts the pause and keeps the cap.
			e.expect(403, "POST", "/api/v1/channels/stable/pause", nil, e.account(), nil)
			e.expect(404, "POST", "/api/v1/channels/beta/pause", nil, admin, nil)
			e.expect(200, "POST", "/api/v1/channels/stable/pause", api.PauseRequest{Reason: "a farmer reports slow disks"}, admin, &status)
			if !status.Hold.Paused || status.Hold.ShareCapPPM == nil || *status.Hold.ShareCapPPM != 100_000 || status.SharePPM != 0 ||
				status.Pause == nil || status.Pause.Reason != "a farmer reports slow disks" || status.Pause.Twin != admin.id {
				t.Fatalf("status after pause = %+v", status)
			}
			code, h, cs = e.channelGet("stable", etag)
			if code != 200 || h.Get("ETag") == etag || !cs.Hold.Paused {
				t.Fatalf("poll after pause: %d %+v: want the new hold", code, cs.Hold)
			}
			status = api.ChannelStatus{} // omitted fields must not keep the pause's
			e.expect(200, "POST", "/api/v1/channels/stable/resume", nil, admin, &status)
			if status.Hold.Paused || *status.Hold.ShareCapPPM != 100_000 || status.SharePPM != 100_000 || status.Pause != nil {
				t.Fatalf("status after resume = %+v", status)
			}
			var got api.ChannelStatus
			e.expect(200, "GET", "/api/v1/channels/stable/status", nil, nil, &got)
			if got.Sequence != 1 || got.Hold.Paused || *got.Hold.ShareCapPPM != 100_000 {
				t.Fatalf("GET status = %+v", got)
			}

			// The replica sees the writes within its TTL (plus the time a
			// loaded machine takes to answer).
			var seen doc.Hold
			testutil.Eventually(t, cfg.ChannelTTL+2*time.Second, func() bool {
				code, _, cs := replica.channelGet("stable", "")
				seen = cs.Hold
				return code == 200 && cs.Hold.ShareCapPPM != nil && !cs.Hold.Paused
			}, "the replica still answers hold %+v after its TTL (%v)", &seen, cfg.ChannelTTL)

			// A newer document clears the hold.
			status = api.ChannelStatus{}
			e.expect(200, "PUT", "/api/v1/channels/stable", channelDoc(t, relKey, "stable", 2, "1.2", 100_000), admin, &status)
			if status.Hold.Paused || status.Hold.ShareCapPPM != nil || status.Version != "1.2" {
				t.Fatalf("status after a new document = %+v", status)
			}

			// Without release keys, the form is all that is checked.
			open := newEnv(t, st, Config{AdminTwin: admin.id})
			unsigned, _ := doc.SignChannel(doc.Channel{Channel: "edge", Sequence: 1, Expires: time.Now().Add(time.Hour), Version: "9",
				Release: "r@sha256:" + strings.Repeat("cd", 32), Waves: doc.Schedule(time.Now(), []uint32{1}, time.Hour)}, otherKey)
			open.expect(200, "PUT", "/api/v1/channels/edge", unsigned, admin, nil)
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
