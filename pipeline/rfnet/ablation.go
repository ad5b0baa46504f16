package rfnet

// Ablation names the parts of RFNet a run goes without, as the paper's
// ablations do (§10.6); the zero value keeps them all. The command line's
// --no-* flags and the benchmark's methods both turn parts off through it.
type Ablation struct {
	SAA         bool // each object's main description alone
	Reference   bool // no reference constraint
	Suppression bool // no suppression constraint
}

// Without is c with the parts a names turned off; it turns none on, so a
// part a configuration file turned off stays off.
func (c Config) Without(a Ablation) Config {
	c.SAA = c.SAA && !a.SAA
	c.ReferenceConstraint = c.ReferenceConstraint && !a.Reference
	c.Suppression = c.Suppression && !a.Suppression
	return c
}
