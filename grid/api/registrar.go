package api

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Networks maps a public network name to its registrar base URL, so a farmer
// can name a network instead of a URL (as Zero-OS's runmode).
var Networks = map[string]string{
	"dev":  "http://registrar.dev4.grid.tf",
	"test": "http://registrar.test4.grid.tf",
	"qa":   "https://registrar.qa4.grid.tf",
	"main": "https://registrar.prod4.threefold.me",
}

// NetworkNames lists the names of Networks, sorted.
func NetworkNames() []string {
	l := make([]string, 0, len(Networks))
	for k := range Networks {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

// ResolveRegistrar is the one place a registrar setting (the node's
// gridnode.registrar, a farmer's --registrar) becomes a base URL: a network
// name (dev, test, qa, main) gives its registrar's URL; anything else must be
// http(s)://HOST[:PORT], returned without a trailing slash and without the
// /api/v1 a farmer may have pasted with it (clients add it).
func ResolveRegistrar(s string) (string, error) {
	s = strings.TrimSpace(s)
	if u, ok := Networks[s]; ok {
		return u, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("registrar %q: want http(s)://HOST[:PORT] or one of %s", s, strings.Join(NetworkNames(), ", "))
	}
	base := strings.TrimRight(u.String(), "/")
	return strings.TrimRight(strings.TrimSuffix(base, Prefix), "/"), nil
}
