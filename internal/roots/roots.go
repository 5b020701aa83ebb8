// Package roots gives the node's TLS clients trusted roots. A node has no
// CA bundle, and the public registrars are HTTPS: Fallback installs the
// roots of golang.org/x/crypto/x509roots, which Go uses only when the system
// has none, and with them the image's own extra roots (ExtraPath: a farm's
// registrar or registry behind a private CA; the spec's tls_roots). The
// modules that make HTTPS requests call it; it is not imported for its side
// effect, because parsing the roots at init would cost every process of the
// node binary (seven on each boot) a millisecond of CPU, tens of
// milliseconds on an emulated machine, on the way to ready.
package roots

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// ExtraPath is where an image carries the extra roots its spec names
// (tls_roots), as PEM certificates.
const ExtraPath = "/etc/gridnode/roots.pem"

var (
	once, fallbackOnce sync.Once
	pool               *x509.CertPool
	extraErr           error
	// extraPath is ExtraPath; tests point it elsewhere.
	extraPath = ExtraPath
)

// Pool is the node's trusted roots: the fallback bundle and the image's
// extra roots (those that parse: Fallback says what did not).
func Pool() *x509.CertPool {
	once.Do(func() {
		pool = x509.NewCertPool()
		for c := range bundle.Roots() {
			cert, err := x509.ParseCertificate(c.Certificate)
			if err != nil {
				continue // a root this Go cannot parse is no root to trust
			}
			if c.Constraint == nil {
				pool.AddCert(cert)
			} else {
				pool.AddCertWithConstraint(cert, c.Constraint)
			}
		}
		b, err := os.ReadFile(extraPath)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		certs, err := ParsePEM(b)
		if err != nil {
			extraErr = fmt.Errorf("extra TLS roots %s: %w", extraPath, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	})
	return pool
}

// Fallback installs Pool as the roots Go uses when the system has none (a
// node has none), once; later calls do nothing. The error says what of
// the image's extra roots could not be read.
func Fallback() error {
	p := Pool()
	fallbackOnce.Do(func() { x509.SetFallbackRoots(p) }) // it panics when called twice
	return extraErr
}

// ParsePEM reads PEM certificates: every block must be a CERTIFICATE that
// parses, and there must be one at least. The certificates that parsed
// come back with the error.
func ParsePEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return certs, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return certs, fmt.Errorf("certificate %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}
