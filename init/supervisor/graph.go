package supervisor

import (
	"fmt"
	"sort"
	"strings"
)

// topo sorts services so that dependencies come first; ties by name so the
// order is the same on every boot.
func topo(deps map[string][]string) ([]string, error) {
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		unseen = iota
		visiting
		done
	)
	mark := map[string]int{}
	var order []string
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch mark[n] {
		case visiting:
			return fmt.Errorf("supervisor: dependency cycle: %s", strings.Join(append(path, n), " → "))
		case done:
			return nil
		}
		mark[n] = visiting
		ds := append([]string(nil), deps[n]...)
		sort.Strings(ds)
		for _, d := range ds {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		mark[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// stopBatches groups services for an ordered shutdown: a service comes in
// the first batch after those of all its dependants, and the services of
// one batch stop together. order is topological (dependencies first).
func stopBatches(order []string, dependants map[string][]string) [][]string {
	stopped := map[string]bool{}
	var batches [][]string
	for len(stopped) < len(order) {
		var batch []string
		for i := len(order) - 1; i >= 0; i-- {
			n := order[i]
			if stopped[n] {
				continue
			}
			free := true
			for _, d := range dependants[n] {
				if !stopped[d] {
					free = false
				}
			}
			if free {
				batch = append(batch, n)
			}
		}
		if len(batch) == 0 { // only with a cycle, which New refuses; never hang
			break
		}
		for _, n := range batch {
			stopped[n] = true
		}
		batches = append(batches, batch)
	}
	return batches
}
