package rfnet

// SteeringBudget is the most steering iterations one run makes under c: the
// sum of its schedule's per-step budgets over the steered steps (§7.3). A run
// whose loss never reaches its threshold (loss thresholds 0, the forced
// schedule) makes exactly that many. object is a single-object run's budget,
// overall the overall run's (0 when c turns both of its constraints off: it
// then has no loss to steer by).
func (c Config) SteeringBudget() (object, overall int) {
	sum := func(schedule []int, steered int) int {
		n := 0
		for i := range min(c.Steps, steered) {
			n += maxIter(schedule, i)
		}
		return n
	}
	object = sum(c.MaxIter, c.MaxIndexStep)
	if c.Suppression || c.ReferenceConstraint {
		overall = sum(c.OverallMaxIter, c.OverallMaxIndexStep)
	}
	return object, overall
}
