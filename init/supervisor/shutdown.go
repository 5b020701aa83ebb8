package supervisor

import (
	"context"
	"sync"
)

// shutdown stops every service, a service only once all its dependants
// have stopped; the services of one batch (stopBatches) stop in parallel.
// First it halts: nothing starts any more, so services waiting for their
// dependencies or for a restart stop at once.
//
// Run calls it when its context ends, and returns when it is done: what
// PID 1 does next (power off, reboot, or jump into another kernel with
// kexec) is its own, after every module has stopped in order.
func (s *Supervisor) shutdown(stops map[string]context.CancelFunc) {
	s.mu.Lock()
	close(s.halt)
	dependants := make(map[string][]string, len(s.svcs))
	for n, sv := range s.svcs {
		dependants[n] = sv.dependants
	}
	s.mu.Unlock()

	for _, batch := range stopBatches(s.order, dependants) {
		var wg sync.WaitGroup
		for _, n := range batch {
			stops[n]()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-s.svcs[n].done
			}()
		}
		wg.Wait()
	}
}
