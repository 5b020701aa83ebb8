// Package loopback says whether a host is this machine's loopback, where
// plain HTTP crosses no network: the builder pulls kernels over plain HTTP
// from a loopback registry only, and the node warns about a plain-HTTP
// registrar that is not on its loopback.
package loopback

import (
	"net"
	"strings"
)

// Host says whether host (a name or an address, without port or
// brackets) is "localhost" or a loopback address (127.0.0.0/8, ::1).
func Host(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
