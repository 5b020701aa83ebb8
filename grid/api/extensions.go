package api

import (
	"net/http"
	"strings"
)

// HeaderExtensions is on every answer of the project's registrar: the
// gridnode extensions it speaks, comma-separated. The reference registrar
// sends none, and a client that sees none speaks the reference API (plain
// X-Auth, page/size), so the same client works against both.
const HeaderExtensions = "X-Gridnode-Extensions"

// Extensions a registrar may name in HeaderExtensions.
const (
	// ExtStrictAuth: authenticated requests must carry X-Auth-Strict (the
	// registrar runs with --strict-auth). A client that sees it signs every
	// authenticated request strictly.
	ExtStrictAuth = "strict-auth"
	// ExtAfter: the list routes (GET /nodes, GET /farms) take after=ID,
	// which answers the records whose id is above ID, in id order: keyset
	// paging, where a deep page costs what the first one does.
	ExtAfter = "after"
)

// HasExtension says whether the answer's header names extension ext.
func HasExtension(h http.Header, ext string) bool {
	for _, v := range h.Values(HeaderExtensions) {
		for _, e := range strings.Split(v, ",") {
			if strings.TrimSpace(e) == ext {
				return true
			}
		}
	}
	return false
}
