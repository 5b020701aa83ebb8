package fact

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWatchWakesDependant: a dependant blocked on Watch's channel (as Wait
// is) wakes when a fact lands, well inside the 100 ms that Wait and the
// supervisor used to poll at. A fact lands when WriteFile renames it into
// place; the time is taken from just before that rename to the wake.
func TestWatchWakesDependant(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := Folder(filepath.Join(root, "facts"))
	landed, stop := d.Watch()
	defer stop()

	const facts = 20
	var waits []time.Duration
	for i := range facts {
		// Written beside the folder, so that only the rename is an
		// event in it.
		tmp := filepath.Join(root, "tmp")
		if err := os.WriteFile(tmp, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := d.Path(fmt.Sprintf("f%d", i))
		t0 := time.Now()
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		select {
		case <-landed:
			waits = append(waits, time.Since(t0))
		case <-time.After(10 * time.Second):
			t.Fatalf("fact %d landed and the watcher did not wake in 10 s", i)
		}
	}
	slices.Sort(waits)
	med := waits[facts/2]
	t.Logf("wake after a fact lands: median %s, max %s over %d facts", med, waits[facts-1], facts)
	if med >= 50*time.Millisecond {
		t.Errorf("median wake %s, want well inside the old 100 ms poll", med)
	}

	// Write, the way modules publish, wakes it too.
	if err := d.Write("module", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-landed:
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not wake the watcher in 10 s")
	}
}

// TestWatchStops: after stop the watcher's goroutine has ended and its
// channel stays quiet.
func TestWatchStops(t *testing.T) {
	t.Parallel()
	d := Folder(t.TempDir())
	landed, stop := d.Watch()
	stop() // returns once the reading goroutine ended
	if err := d.Write("after", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-landed:
		t.Fatal("a stopped watch still reports facts")
	default:
	}
}
