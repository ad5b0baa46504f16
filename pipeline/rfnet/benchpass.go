package rfnet

import (
	"fmt"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/tensor"
)

// GuidanceBench is the guidance pass of the single-object run of plan's
// first object (by name, as the runs order them) at the schedule's first
// step, from its starting latent: the pass a run makes (its box loss, its
// masks, its text prepared), for a benchmark to time one call at a time
// (bench-engine's guidance row). Eager, every pass runs op by op; else the
// passes run as a run's do: the first eagerly, the second captured where
// the backend can (CUDA graphs), every later one replayed.
type GuidanceBench struct {
	r    *runner
	l    loop
	pass *guidancePass
	z    *tensor.Tensor
	t    float64
}

// NewGuidanceBench prepares the pass of plan under c on m.
func NewGuidanceBench(m *pipeline.Model, plan *llm.Plan, c Config, eager bool) (*GuidanceBench, error) {
	if err := Validate(m, c); err != nil {
		return nil, err
	}
	if err := plan.Check(); err != nil {
		return nil, fmt.Errorf("rfnet: plan: %w", err)
	}
	if len(plan.Objects) == 0 {
		return nil, fmt.Errorf("rfnet: the guidance pass of a plan without objects")
	}
	r := &runner{Model: m, cfg: c, emit: func(TraceEvent) {}}
	s, _, err := r.specOf(plan)
	if err != nil {
		return nil, err
	}
	soUncond, _ := r.EncodePrompt(s.SONegative)
	grids := attentionGrids(r.UNet.CrossAttentionLayers(c.Height/8, c.Width/8))
	l, err := r.objectLoop(s, 0, soUncond, grids)
	if err != nil {
		return nil, err
	}
	ch := r.Variant.UNet.InChannels
	z := r.objectStarts(s, noise(c.BgSeed, ch*(c.Height/8)*(c.Width/8)), l.sched.InitNoiseSigma())[0]
	l.prepared = r.UNet.PrepareContext(l.cond)
	g := &GuidanceBench{r: r, l: l, pass: r.loopGuidance(l), z: z, t: l.sched.Timesteps()[0]}
	g.pass.eager = eager
	return g, nil
}

// Run is one pass; only its gradient is made, and freed.
func (g *GuidanceBench) Run() error {
	_, grads, err := g.pass.run([]*tensor.Tensor{g.z}, 0, g.t)
	if err != nil {
		return err
	}
	grads[0].Free()
	return nil
}

// Captured says whether the passes replay a captured one (from the third
// on, where the backend captures and the pass is not eager).
func (g *GuidanceBench) Captured() bool { return g.pass.passes.Captured() }

// Close releases the captured pass, the prepared text and the latent.
func (g *GuidanceBench) Close() {
	g.pass.close()
	g.l.prepared.Free()
	g.z.Free()
}
