package mounts

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/run/gridnode/medium": "/run/gridnode/medium",
		`/mnt/with\040space`:   "/mnt/with space",
		`/mnt/tab\011`:         "/mnt/tab\t",
		`/odd\`:                `/odd\`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	tab, err := Table()
	if err != nil {
		t.Skip(err)
	}
	for _, e := range tab {
		if e.Target == "/proc" && e.FSType == "proc" {
			return
		}
	}
	t.Errorf("no /proc in %v", tab)
}
