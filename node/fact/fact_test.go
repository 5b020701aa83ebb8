package fact

import (
	"context"
	"testing"
	"time"
)

// TestWaitSeesLateFact: Wait returns the fact written after it began, and
// gives up when its context ends.
func TestWaitSeesLateFact(t *testing.T) {
	t.Setenv("GRIDNODE_RUN", t.TempDir())
	got := make(chan error, 1)
	var v struct{ N int }
	go func() { got <- Wait(context.Background(), "late", &v) }()
	if err := Write("late", struct{ N int }{7}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil || v.N != 7 {
			t.Fatalf("Wait = %v, fact %+v; want N 7", err, v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the fact was written")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, "never", nil); err == nil {
		t.Fatal("Wait for a fact never written returned no error")
	}
}
