package registrar

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/registrar/store"
)

var errClosed = errors.New("uptime batcher closed")

// batcher writes uptime reports by group commit: one goroutine takes every
// report queued while the previous transaction ran (up to max) and writes
// them in one transaction, then tells each submitter. Under load, batches
// grow and the cost per report falls; when idle, a report is written at once.
type batcher struct {
	st     store.Store
	max    int
	m      *metrics
	log    *slog.Logger
	in     chan pending
	mu     sync.RWMutex
	closed bool
	done   chan struct{}
}

type pending struct {
	u    store.Uptime
	done chan error
}

func newBatcher(st store.Store, max int, m *metrics, log *slog.Logger) *batcher {
	b := &batcher{st: st, max: max, m: m, log: log, in: make(chan pending, max*4), done: make(chan struct{})}
	go b.run()
	return b
}

// submit queues u and waits until it is committed.
func (b *batcher) submit(ctx context.Context, u store.Uptime) error {
	p := pending{u: u, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.in <- p:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	// Once queued, the report will be written even if the client goes away.
	return <-p.done
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]pending, 0, b.max)
	for {
		p, ok := <-b.in
		if !ok {
			return
		}
		batch = append(batch[:0], p)
	drain:
		for len(batch) < b.max {
			select {
			case p, ok := <-b.in:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		b.write(batch)
	}
}

func (b *batcher) write(batch []pending) {
	reports := make([]store.Uptime, len(batch))
	for i, p := range batch {
		reports[i] = p.u
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = b.st.ReportUptime(ctx, reports)
		cancel()
		if err == nil {
			break
		}
		b.log.Warn("writing uptime batch", "reports", len(reports), "attempt", attempt+1, "err", err)
	}
	b.m.batch(len(batch))
	for _, p := range batch {
		p.done <- err
	}
}

// Close stops accepting reports, writes every queued one and returns.
func (b *batcher) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
	b.mu.Unlock()
	<-b.done
	return nil
}
