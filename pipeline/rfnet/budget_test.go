package rfnet

import "testing"

// The published schedule steers 4·5 + 3·5 + 2·10 + 1·10 = 65 times in the 30
// steered steps of 50; fewer steps cut the sum, an ablated overall run has none.
func TestSteeringBudget(t *testing.T) {
	for _, c := range []struct {
		name            string
		edit            func(*Config)
		object, overall int
	}{
		{"published", func(*Config) {}, 65, 65},
		{"32 steps", func(c *Config) { c.Steps = 32 }, 65, 65},
		{"6 steps", func(c *Config) { c.Steps = 6 }, 23, 23},
		{"10 steered steps", func(c *Config) { c.MaxIndexStep = 10 }, 35, 65},
		{"no constraints", func(c *Config) { c.Suppression, c.ReferenceConstraint = false, false }, 65, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.edit(&cfg)
			if o, a := cfg.SteeringBudget(); o != c.object || a != c.overall {
				t.Errorf("budget %d, %d; want %d, %d", o, a, c.object, c.overall)
			}
		})
	}
}
