package registrar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/printable"
)

// describe says in a farmer's words what went wrong talking to the registrar
// at base: "registrar http://10.0.2.2:8080 unreachable: connection refused".
// The words go to the fact and the console; what the registrar wrote in
// them (its error message) cannot act on a terminal (internal/printable).
func describe(base string, err error) string {
	return printable.String(explain(base, err))
}

func explain(base string, err error) string {
	var se *stageError
	doing := ""
	if errors.As(err, &se) {
		doing = se.stage
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		what := fmt.Sprintf("registrar %s answered %d", base, ce.Status)
		if ce.Message != "" {
			what += " (" + ce.Message + ")"
		}
		if doing != "" {
			what += " when " + doing
		}
		switch ce.Status {
		case 401:
			what += "; the node's clock or key may be wrong"
		case 404:
			if doing == "creating the node" {
				what += "; is gridnode.farm right?"
			}
		case 429:
			what += "; the registrar is busy"
		}
		return what
	}
	var ue *url.Error
	if errors.As(err, &ue) || isNetErr(err) {
		return fmt.Sprintf("registrar %s unreachable: %s", base, netReason(err))
	}
	if doing != "" {
		return fmt.Sprintf("%s: %v", doing, unwrapStage(err))
	}
	return err.Error()
}

func unwrapStage(err error) error {
	var se *stageError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// netReason names a network failure.
func netReason(err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the registrar running?)"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable (no route: check the node's address and gateway)"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot resolve %s (check DNS)", dns.Name)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer in time"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer in time"
	}
	// The innermost error says the most.
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
