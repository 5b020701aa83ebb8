package roots

import (
	"crypto/x509"
	"os"
	"os/exec"
	"testing"
)

// TestFallback runs in a child process that sees no system roots (as on a
// node): after Fallback, called twice (the second must do nothing), the
// system pool holds the fallback roots.
func TestFallback(t *testing.T) {
	if os.Getenv("ROOTS_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFallback$", "-test.v")
		cmd.Env = append(os.Environ(), "ROOTS_CHILD=1", "SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	Fallback()
	Fallback()
	p, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if p.Equal(x509.NewCertPool()) {
		t.Fatal("no roots after Fallback on a system without any")
	}
}
