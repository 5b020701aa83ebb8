package network

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/beevik/ntp"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// syncClock sets the system clock from the first NTP server that answers,
// else from the registrar's HTTP Date header. Signed registrar requests fail
// on a clock that is far off, and a node without a battery-backed clock
// boots in 1970, so an approximate time from the registrar beats none.
// set is called only when the clock is off by more than a second.
func syncClock(ctx context.Context, servers []string, registrar string, set func(time.Time) error) fact.Clock {
	var errs []error
	for _, s := range servers {
		if ctx.Err() != nil {
			break
		}
		r, err := ntp.QueryWithOptions(s, ntp.QueryOptions{Timeout: ntpTimeout})
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("NTP %s: %w", s, err))
			continue
		}
		return adjust(fact.Clock{Source: "ntp", Server: s}, r.ClockOffset, set)
	}
	if registrar != "" {
		off, err := registrarOffset(ctx, registrar)
		if err == nil {
			u, _ := url.Parse(registrar)
			return adjust(fact.Clock{Source: "registrar", Server: u.Host}, off, set)
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, errors.New("no registrar configured to take the time from"))
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fact.Clock{Source: "none", Error: strings.Join(msgs, "; ")}
}

func adjust(c fact.Clock, off time.Duration, set func(time.Time) error) fact.Clock {
	c.OffsetMS = off.Milliseconds()
	if off > time.Second || off < -time.Second {
		if err := set(localNow().Add(off)); err != nil {
			c.Error = fmt.Sprintf("setting the clock (off by %s): %v", off.Round(time.Millisecond), err)
			return c
		}
	}
	c.SyncedAt = time.Now().UTC()
	return c
}

// registrarOffset reads the Date header of an answer of the registrar and
// returns how far the local clock is behind it. Over HTTPS the answer is
// believed only when the registrar's certificate chain verifies: at the
// local clock, or, when that fails (a clock years off makes every
// certificate look expired or not yet valid), at the time the answer
// itself claims (verifyAt).
func registrarOffset(ctx context.Context, base string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	u, err := url.Parse(base)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", base, err)
	}
	c := &http.Client{
		Transport: &http.Transport{
			// The chain is verified below, once the answer's time is known;
			// nothing is sent that needs it verified before (no
			// credentials, no signature: a bare GET).
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t0 := localNow()
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", base, err)
	}
	t1 := localNow()
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("registrar %s: no usable Date header (%q)", base, resp.Header.Get("Date"))
	}
	if u.Scheme == "https" {
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			return 0, fmt.Errorf("registrar %s: no certificate in the TLS answer", base)
		}
		if err := verifyAt(resp.TLS.PeerCertificates, u.Hostname(), t1, d); err != nil {
			return 0, fmt.Errorf("registrar %s: not taking the time from it: %w", base, err)
		}
	}
	// Date has a one-second resolution: its middle is the best guess, taken
	// against the middle of the round trip.
	mid := t0.Add(t1.Sub(t0) / 2)
	return d.Add(500 * time.Millisecond).Sub(mid), nil
}

// maxAhead bounds the time a registrar may claim past the image's build:
// a node runs a release for months or years, not for decades.
const maxAhead = 30 * 365 * 24 * time.Hour

// verifyAt checks the registrar's certificate chain (peer: the leaf first)
// for host against the node's roots at the local clock, and when that
// fails, at claimed, the time the registrar's answer says it is.
//
// Why that is sound: in the TLS handshake the server signed with the
// leaf's key (TLS checks that signature whatever InsecureSkipVerify says),
// and the Date header came inside that session, so whoever holds the key
// of a certificate that verifies at claimed wrote claimed. An attacker on
// the path without such a key cannot make the node take a time; one who
// holds the key of a certificate that is expired now could claim a time
// inside its validity, so claimed must be no earlier than the image's
// build (a certificate that had expired by then is of no use), and no
// later than maxAhead past it. What remains is a certificate that expired
// after the image was built and whose key leaked: the same exposure as a
// key stolen while its certificate is valid, which no clock can catch.
func verifyAt(peer []*x509.Certificate, host string, local, claimed time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: trustedRoots(), Intermediates: inter, DNSName: host, CurrentTime: local}
	if _, err := peer[0].Verify(opts); err == nil {
		return nil
	} else if !isTimeError(err) {
		return fmt.Errorf("its certificate does not verify: %w", err)
	}
	built := imageBuilt()
	if claimed.Before(built) {
		return fmt.Errorf("it claims %s, before this image was built (%s)", claimed.UTC().Format(time.RFC3339), built.UTC().Format(time.RFC3339))
	}
	if claimed.After(built.Add(maxAhead)) {
		return fmt.Errorf("it claims %s, more than 30 years after this image was built (%s)", claimed.UTC().Format(time.RFC3339), built.UTC().Format(time.RFC3339))
	}
	opts.CurrentTime = claimed
	if _, err := peer[0].Verify(opts); err != nil {
		return fmt.Errorf("its certificate does not verify at our clock (%s) nor at the time it claims (%s): %w",
			local.UTC().Format(time.RFC3339), claimed.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// isTimeError says whether a verification failed only on a certificate's
// validity period.
func isTimeError(err error) bool {
	var ce x509.CertificateInvalidError
	return errors.As(err, &ce) && ce.Reason == x509.Expired
}

// What the tests replace: the local clock, the trusted roots, and the
// image's build time.
var (
	localNow     = time.Now
	trustedRoots = roots.Pool
	imageBuilt   = func() time.Time { return fileTime(config.ImagePath) }
)

// fileTime is the modification time of an image file: every record of the
// initramfs carries SOURCE_DATE_EPOCH, the time of the build (build/
// initramfs), and the kernel keeps it as the unpacked files' mtime. Zero
// when the file is missing (no image: tests).
func fileTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// setSystemClock sets CLOCK_REALTIME (needs CAP_SYS_TIME; PID 1's modules
// run as root).
func setSystemClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}
