package cpu

import (
	"runtime"
	"sync"
)

// parallelFor calls f on disjoint ranges covering [0, n), on up to GOMAXPROCS
// goroutines. Ranges hold at least grain items, so small loops stay on one goroutine.
func parallelFor(n, grain int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if grain < 1 {
		grain = 1
	}
	if chunks := n / grain; chunks < workers {
		workers = max(chunks, 1)
	}
	if workers == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
