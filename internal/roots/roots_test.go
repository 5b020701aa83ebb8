package roots

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/internal/testutil"
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

// TestExtraRoots: the image's extra roots join the pool; a file with
// something else than certificates is refused with what is wrong, and its
// certificates before the fault are kept.
func TestExtraRoots(t *testing.T) {
	ca := testutil.NewCA(t)
	for _, c := range []struct {
		name, pem, err string
	}{
		{"one", string(ca.PEM), ""},
		{"key", string(ca.PEM) + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", `PEM block 2 is a "PRIVATE KEY"`},
		{"none", "just text\n", "no PEM certificate"},
		{"broken", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1:"},
	} {
		certs, err := ParsePEM([]byte(c.pem))
		if c.err == "" && (err != nil || len(certs) != 1 || !certs[0].Equal(ca.Cert)) {
			t.Errorf("%s: %d certificates, %v", c.name, len(certs), err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
		}
	}
	if os.Getenv("ROOTS_CHILD") == "" {
		p := filepath.Join(t.TempDir(), "roots.pem")
		os.WriteFile(p, ca.PEM, 0o644)
		cmd := exec.Command(os.Args[0], "-test.run=^TestExtraRoots$", "-test.v")
		cmd.Env = append(os.Environ(), "ROOTS_CHILD=1", "ROOTS_EXTRA="+p, "SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// The child: a node with the extra root in its image, the same CA's
	// certificate (another copy: made again from the file) is trusted.
	extraPath = os.Getenv("ROOTS_EXTRA")
	if err := Fallback(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(extraPath)
	certs, _ := ParsePEM(b)
	if _, err := certs[0].Verify(x509.VerifyOptions{}); err != nil {
		t.Fatalf("the extra root is not trusted after Fallback: %v", err)
	}
}
