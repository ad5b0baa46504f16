package sched

import "fmt"

func errUnsupportedDPM(c Config) error {
	return fmt.Errorf("sched: dpm++2m needs algorithm_type dpmsolver++, solver_type midpoint, solver_order 2 (config has %q, %q, %d)",
		c.AlgorithmType, c.SolverType, c.SolverOrder)
}
