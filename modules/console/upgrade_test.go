package console

import (
	"strings"
	"testing"

	"github.com/gridnode/gridnode/node/fact"
)

// The release the node runs, its channel, what the upgrade module does and
// what became of the boot medium show on both screens.
func TestScreenShowsRelease(t *testing.T) {
	dir := fixture(t)
	f := fact.Upgrade{Running: "0.2.0", Channel: "stable", State: fact.UpgIdle, Message: "0.2.0 passed its trial",
		Medium: "0.2.0 runs until the next cold boot: the boot medium is read-only", RolledBack: true, RolledBackFrom: "0.3.0"}
	if err := fact.Folder(dir).Write(fact.NameUpgrade, f); err != nil {
		t.Fatal(err)
	}
	s := load(dir)
	want := "running 0.2.0, channel stable: idle (0.2.0 passed its trial); medium: 0.2.0 runs until the next cold boot: the boot medium is read-only; rolled back from 0.3.0"
	if serial := strings.Join(s.serial(), "\n"); !strings.Contains(serial, "status: release "+want) {
		t.Fatalf("serial:\n%s\nwant a line with %q", serial, want)
	}
	screen := strings.Join(s.lines(), "\n")
	if !strings.Contains(screen, "Release    : running 0.2.0, channel stable: idle") || !strings.Contains(screen, "read-only") {
		t.Fatalf("screen:\n%s", screen)
	}
}
