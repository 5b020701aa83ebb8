// Package roots gives the node's TLS clients trusted roots. A node has no
// CA bundle, and the public registrars are HTTPS: Fallback installs the
// roots of golang.org/x/crypto/x509roots, which Go uses only when the system
// has none. The modules that make HTTPS requests call it; it is not imported
// for its side effect, because parsing the roots at init would cost every
// process of the node binary (seven on each boot) a millisecond of CPU, tens
// of milliseconds on an emulated machine, on the way to ready.
package roots

import (
	"crypto/x509"
	"sync"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

var once sync.Once

// Fallback installs the fallback roots, once; later calls do nothing.
func Fallback() {
	once.Do(func() {
		p := x509.NewCertPool()
		for c := range bundle.Roots() {
			cert, err := x509.ParseCertificate(c.Certificate)
			if err != nil {
				continue // a root this Go cannot parse is no root to trust
			}
			if c.Constraint == nil {
				p.AddCert(cert)
			} else {
				p.AddCertWithConstraint(cert, c.Constraint)
			}
		}
		x509.SetFallbackRoots(p)
	})
}
