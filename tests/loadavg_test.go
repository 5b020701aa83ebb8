//go:build bench || soak

package tests

import (
	"os"
	"strings"
)

// loadavg is the machine's load average (1, 5, 15 minutes), which benches
// and soaks print beside their figures: the machine may be shared.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b) + " ? ? ?")
	return strings.Join(f[:3], " ")
}
