package api

import (
	"strings"
	"testing"
)

func TestResolveRegistrar(t *testing.T) {
	for in, want := range map[string]string{
		"main":                           "https://registrar.prod4.threefold.me",
		" dev ":                          "http://registrar.dev4.grid.tf",
		"http://10.0.2.2:8080":           "http://10.0.2.2:8080",
		"http://10.0.2.2:8080/":          "http://10.0.2.2:8080",
		"https://reg.example/api/v1/":    "https://reg.example",
		"https://reg.example/api/v1":     "https://reg.example",
		"http://reg.example/grid/":       "http://reg.example/grid",
		"http://reg.example/grid/api/v1": "http://reg.example/grid",
	} {
		got, err := ResolveRegistrar(in)
		if err != nil || got != want {
			t.Errorf("ResolveRegistrar(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ftp://x", "mainnet", "10.0.2.2:8080", "http://"} {
		_, err := ResolveRegistrar(in)
		if err == nil || !strings.Contains(err.Error(), "want http(s)://HOST[:PORT] or one of dev, main, qa, test") {
			t.Errorf("ResolveRegistrar(%q) = %v; want an error naming what is allowed", in, err)
		}
	}
}
