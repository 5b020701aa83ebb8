package registrar

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/gridnode/gridnode/internal/loopback"
	"github.com/gridnode/gridnode/node/fact"
)

// warnedMarker is made in the fact folder (tmpfs: new at every boot) once
// the plain-HTTP warning was given, so a module restarted by the
// supervisor does not give it again.
const warnedMarker = ".registrar-plain-http-warned"

// warnPlainHTTP warns on the console, once per boot, when the registrar at
// u is reached over plain HTTP on another machine (the public dev and test
// registrars are): the node's requests are signed, so nobody on the path
// can forge them, but anyone there can read them, replay one within its
// 60 s, and change or invent the registrar's answers (and its clock, when
// no NTP server answers). It says whether it warned.
func warnPlainHTTP(u string, log *slog.Logger) bool {
	if !plainRemote(u) {
		return false
	}
	f, err := os.OpenFile(filepath.Join(fact.Dir(), warnedMarker), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false
	}
	if err == nil {
		f.Close()
	}
	log.Warn("registrar " + u + " is plain HTTP to another machine: anyone on the network path can read the node's requests, " +
		"replay one within 60 s, and change the registrar's answers; use an https:// registrar (qa, main, or your own) for a node that matters")
	return true
}

// plainRemote says whether u is an http:// URL to a host other than the
// loopback.
func plainRemote(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	return !loopback.Host(p.Hostname())
}
