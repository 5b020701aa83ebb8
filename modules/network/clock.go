package network

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/ntp"
	"github.com/gridnode/gridnode/internal/roots"
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
		roots.Fallback() // the public registrars are HTTPS
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
		if err := set(time.Now().Add(off)); err != nil {
			c.Error = fmt.Sprintf("setting the clock (off by %s): %v", off.Round(time.Millisecond), err)
			return c
		}
	}
	c.SyncedAt = time.Now().UTC()
	return c
}

// registrarOffset reads the Date header of any answer from the registrar and
// returns how far the local clock is behind it.
func registrarOffset(ctx context.Context, base string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", base, err)
	}
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", base, err)
	}
	t1 := time.Now()
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("registrar %s: no usable Date header (%q)", base, resp.Header.Get("Date"))
	}
	// Date has a one-second resolution: its middle is the best guess, taken
	// against the middle of the round trip.
	mid := t0.Add(t1.Sub(t0) / 2)
	return d.Add(500 * time.Millisecond).Sub(mid), nil
}

// setSystemClock sets CLOCK_REALTIME (needs CAP_SYS_TIME; PID 1's modules
// run as root).
func setSystemClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}
