package rfnet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rfnet/rfnet-native/internal/timeline"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/sched"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
)

// Options configure a run.
type Options struct {
	Config Config
	// Trace receives one event per steering iteration, per step without
	// steering and per stage (see TraceEvent; may be nil).
	Trace func(TraceEvent)
	// Progress is called after every denoising step of every run (may be nil).
	Progress func(stage string, object, step, total int)
	// Latent, when not nil, is handed the latent after every denoising step
	// of every run, right after Progress (serve's cheap previews,
	// pipeline.LatentPreview). It must not keep or change it.
	Latent func(stage string, object, step int, latent *tensor.Tensor)
	// AllowV runs on a v-prediction model, which CheckPrediction refuses.
	AllowV bool
	// PreviewEvery k > 0 decodes the overall run's latent after every k-th
	// step into Result.Previews; 0 decodes none.
	PreviewEvery int
	// Timeline, when not nil, records the run's stages, objects, steps and
	// steering iterations as nested spans (--profile-out).
	Timeline *timeline.Recorder
	// Context, when not nil, cancels the run before any denoising step or
	// steering iteration (pipeline.Canceled): Run then returns an error that
	// wraps Context.Err().
	Context context.Context
	// SAM, when not nil, cuts each object's mask from its image with §8.1
	// (Config.SAMBox chooses the prompt); without it, §8.2's attention mask.
	SAM *sam.Model
}

// runner is one RFNet run's state: the Stable Diffusion model with the
// run's configuration and callbacks.
type runner struct {
	*pipeline.Model
	cfg          Config
	emit         func(TraceEvent)
	progress     func(stage string, object, step, total int)
	latent       func(stage string, object, step int, latent *tensor.Tensor)
	previewEvery int
	tl           *timeline.Recorder
	ctx          context.Context // may be nil
	sam          *sam.Model      // may be nil
}

// ObjectResult is what the single-object run of one box produced.
type ObjectResult struct {
	Name     string
	Prompt   string
	Box      Box // in the scene
	SOBox    Box // where the single-object run drew it
	Image    *tensor.Tensor
	Mask     []float64 // latent-grid mask, before alignment
	Saliency []float64 // the word token's aggregated attention at the object key
	SalH     int
	SalW     int
	Shift    [2]int // latent cells
	// AlignedMask is Mask shifted onto the scene box (latent grid).
	AlignedMask []float64
	// MaskMethod is how Mask was made (MaskSAMPoint, MaskSAMBox or
	// MaskAttention); SAM holds §8.1's candidates and choice when SAM made it.
	MaskMethod string
	SAM        *SAMChoice
	// OverallAttention is the overall run's attention of the object's phrase's
	// word token, ReferenceAttention its own run's (shifted into the scene),
	// both on the latent grid as attentionWindow averages them.
	OverallAttention   []float64
	ReferenceAttention []float64
}

// Result is a whole RFNet generation.
type Result struct {
	Image           *tensor.Tensor // [1, 3, H, W] in [0, 1]
	Latents         *tensor.Tensor
	Plan            *llm.Plan
	SAA             []SAAResult
	OverallPrompt   string
	OverallNegative string
	SONegative      string
	Objects         []ObjectResult
	LatentH         int
	LatentW         int
	Durations       map[string]time.Duration
	Geometry        Geometry
	Composed        *tensor.Tensor // the composed initial latent C[0], decoded: [1, 3, H, W] in [0, 1]
	Frozen          []float64      // the frozen region F on the latent grid (1 inside)
	Previews        []Preview      // with Options.PreviewEvery
	// Profile is the seconds of the run's timeline spans summed by name
	// (with Options.Timeline; run.json's profile_seconds).
	Profile map[string]float64
}

// Preview is the overall run's latent after a step, decoded.
type Preview struct {
	Step  int            // 1-based: the latent after this many steps
	Image *tensor.Tensor // [1, 3, H, W] in [0, 1]
}

// Validate checks a configuration against the model (steps, scheduler, size
// and memory), as Run does first: callers run it before asking an LLM for a plan.
func Validate(m *pipeline.Model, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	req := pipeline.Request{Steps: c.Steps, Guidance: c.Guidance, Scheduler: c.Scheduler, Width: c.Width, Height: c.Height}
	return m.Validate(&req)
}

// Run generates plan's scene with m.
func Run(m *pipeline.Model, plan *llm.Plan, o Options) (*Result, error) {
	c := o.Config
	if err := Validate(m, c); err != nil {
		return nil, err
	}
	if !o.AllowV {
		if err := CheckPrediction(m); err != nil {
			return nil, err
		}
	}
	if err := plan.Check(); err != nil {
		return nil, fmt.Errorf("rfnet: plan: %w", err)
	}
	if o.PreviewEvery < 0 {
		return nil, fmt.Errorf("rfnet: preview every %d steps: want 0 (none) or more", o.PreviewEvery)
	}
	r := &runner{Model: m, cfg: c, emit: func(TraceEvent) {}, progress: o.Progress, latent: o.Latent, previewEvery: o.PreviewEvery, tl: o.Timeline, ctx: o.Context, sam: o.SAM}
	if o.Trace != nil {
		r.emit = o.Trace
	}
	span := r.tl.Begin("rfnet", "prompt", plan.Prompt, "objects", len(plan.Objects), "bg_seed", c.BgSeed, "steps", c.Steps)
	res, err := r.run(plan)
	span.End()
	if res != nil {
		res.Profile = r.tl.Totals(span)
	}
	return res, err
}

// stage times a part of the run and reports it to the trace.
func (r *runner) stage(res *Result, name string, start time.Time) {
	d := time.Since(start)
	res.Durations[name] += d
	r.emit(TraceEvent{Stage: "timing", Name: name, Seconds: ptr(d.Seconds())})
}

func (r *runner) newScheduler() (sched.Scheduler, error) {
	return sched.New(r.cfg.Scheduler, r.Variant.Sched, r.cfg.Steps)
}

func (r *runner) run(plan *llm.Plan) (*Result, error) {
	c := r.cfg
	res := &Result{Plan: plan, Durations: map[string]time.Duration{}}
	ch, h, w := r.Variant.UNet.InChannels, c.Height/8, c.Width/8
	res.LatentH, res.LatentW = h, w
	res.Geometry.LatentGrid, res.Geometry.Objects = [2]int{h, w}, []ObjectGeometry{}
	layers := map[string]unet.Layer{}
	crossLayers := r.UNet.CrossAttentionLayers(h, w)
	grids := attentionGrids(crossLayers) // the losses' masks are uploaded for these
	base := h
	for _, l := range crossLayers {
		layers[l.Key] = l
		base = min(base, l.H)
	}
	for _, k := range append(append([]string(nil), c.SteeringKeys...), c.ObjectKey) {
		if _, ok := layers[k]; !ok {
			return nil, fmt.Errorf("rfnet: attention key %q is not a cross-attention layer of this UNet (it has %v)", k, keys(layers))
		}
	}

	// Prompts: SAA picks the descriptions, then the prompts and token positions.
	start := time.Now()
	span := r.tl.Begin("prompts")
	defer span.End() // on an early return; a second End does nothing
	s, saa, err := r.specOf(plan)
	if err != nil {
		return nil, err
	}
	res.SAA = saa
	res.OverallPrompt, res.OverallNegative, res.SONegative = s.Overall, s.OverallNegative, s.SONegative
	// Every prompt is encoded here, the objects' with their loops, so the
	// text encoder's whole time is this stage's.
	text := r.tl.Begin("text encoder", "prompts", 3+len(s.Objects))
	soUncond, _ := r.EncodePrompt(s.SONegative)
	overallUncond, _ := r.EncodePrompt(s.OverallNegative)
	overallCond, _ := r.EncodePrompt(s.Overall)
	ls := make([]loop, len(s.Objects))
	for j := range s.Objects {
		if ls[j], err = r.objectLoop(s, j, soUncond, grids); err != nil {
			return nil, err
		}
	}
	text.End()
	span.End()
	r.stage(res, "prompts", start)

	probe, err := r.newScheduler()
	if err != nil {
		return nil, err
	}
	sigma := probe.InitNoiseSigma()
	bg := noise(c.BgSeed, ch*h*w)

	// Stage 2, step 1: every object alone, steered into its box; with
	// batch_objects all the single-object runs as one batch (steerBatch).
	zs := r.objectStarts(s, bg, sigma)
	objects := r.objectsOneByOne
	if c.BatchObjects {
		objects = r.objectsBatched
	}
	placedObjs, err := objects(res, s, ls, zs, base)
	if err != nil {
		return nil, err
	}

	// Composition and stage 2, step 2: the overall scene.
	start = time.Now()
	span = r.tl.Begin("overall", "prompt", s.Overall)
	defer span.End()
	composing := r.tl.Begin("compose")
	bgScaled := make([]float64, len(bg))
	for i, v := range bg {
		bgScaled[i] = v * sigma
	}
	comp := compose(bgScaled, placedObjs, c.Steps, ch, h, w, c.ComposeBoxToBg)
	composing.End()
	sc, err := r.newScheduler()
	if err != nil {
		return nil, err
	}
	frozen := c.frozenSteps()
	if len(placedObjs) == 0 {
		frozen = 0
	}
	res.Frozen = comp.frozen
	frozenMask := tensor.FromFloat64(r.Backend, r.DType, tensor.Shape{1, 1, h, w}, comp.frozen)
	// The phrases' attention at the steering layers, kept at every step:
	// the maps the reference constraint compares with each object's own run.
	var words []int
	for _, p := range s.Phrases {
		words = append(words, p.Word)
	}
	l := loop{stage: "overall", object: -1, sched: sc, cond: overallCond, uncond: overallUncond, keys: c.SteeringKeys,
		scale: c.OverallLossScale, threshold: c.OverallLossThreshold, maxIter: c.OverallMaxIter,
		maxIndexStep: c.OverallMaxIndexStep, remeasure: c.RemeasureLoss, save: c.SteeringKeys, saveTokens: words,
		after: func(i int, z *tensor.Tensor) *tensor.Tensor {
			if i < frozen {
				// z = C[i+1]·F + z·(1-F)
				ci := tensor.FromFloat64(r.Backend, r.DType, tensor.Shape{1, ch, h, w}, comp.latents[i+1])
				z = ci.Mul(frozenMask).Add(z.Mul(frozenMask.Neg().AddScalar(1)))
			}
			if r.previewEvery > 0 && (i+1)%r.previewEvery == 0 {
				res.Previews = append(res.Previews, Preview{Step: i + 1, Image: r.DecodeImage(z)})
			}
			return z
		}}
	if len(s.Phrases) > 0 && (c.Suppression || c.ReferenceConstraint) {
		masks := newOverallMasks(r.Backend, r.DType, grids, s, c.SteeringKeys)
		var refs *references
		defer func() { refs.free() }()
		if c.ReferenceConstraint {
			l.before = func(step int) {
				refs = refs.next(r.Backend, r.DType, placedObjs, step, masks, c.SteeringKeys, c.RefEps)
			}
		}
		l.loss = func(step int, maps map[string]capture) (steeringLoss, error) {
			return overallLoss(maps, s, placedObjs, step, masks, refs, c)
		}
	}
	z0 := tensor.FromFloat64(r.Backend, r.DType, tensor.Shape{1, ch, h, w}, comp.latents[0])
	run, err := r.steer(l, z0)
	if err != nil {
		return nil, fmt.Errorf("rfnet: overall generation: %w", err)
	}
	res.Latents = run.latents[len(run.latents)-1]
	if err := r.checkResult(res.Latents, "overall generation"); err != nil {
		return nil, err
	}
	overallGeometry(&res.Geometry, r.Tokenizer, s, frozen, run.iterations)
	window := attentionWindow(c)
	for j := range res.Objects {
		res.Objects[j].OverallAttention = meanAttention(run.saved[phraseOf(s, j)], c.SteeringKeys, window, h, w).v
		res.Objects[j].ReferenceAttention = meanAttention(placedObjs[j].saved, c.SteeringKeys, window, h, w).v
	}
	r.stage(res, "overall", start)
	span.End()
	start = time.Now()
	decode := r.tl.Begin("vae decode")
	res.Image = r.DecodeImage(res.Latents)
	decode.End()
	r.stage(res, "decode", start)
	if err := r.CheckFinite(res.Image, "rfnet: the decoded image", "vae"); err != nil {
		return nil, err
	}
	start = time.Now()
	res.Composed = r.DecodeImage(z0)
	r.stage(res, "pictures", start)
	return res, nil
}

// objectsOneByOne runs the single-object runs ls from zs one after the
// other (batch_objects false: the path to compare the batch with, and the
// one that holds one object's activations at a time).
func (r *runner) objectsOneByOne(res *Result, s *spec, ls []loop, zs []*tensor.Tensor, base int) ([]placed, error) {
	var placedObjs []placed
	for j := range s.Objects {
		start := time.Now()
		o := &s.Objects[j]
		span := r.tl.Begin("object", "index", j, "name", o.Name, "prompt", o.Prompt, "box", o.Box, "single_object_box", o.SOBox)
		defer span.End()
		run, err := r.steer(ls[j], zs[j])
		if err != nil {
			return nil, fmt.Errorf("rfnet: object %s: %w", llm.Quote(o.Name), err)
		}
		if err := r.finishObject(res, s, j, run, base, &placedObjs); err != nil {
			return nil, err
		}
		span.End()
		r.stage(res, fmt.Sprintf("object %d", j), start)
	}
	return placedObjs, nil
}

// objectsBatched runs the single-object runs ls from zs as one batch
// (steerBatch), then finishes each object as objectsOneByOne does.
func (r *runner) objectsBatched(res *Result, s *spec, ls []loop, zs []*tensor.Tensor, base int) ([]placed, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	start := time.Now()
	span := r.tl.Begin("objects", "batch", len(ls))
	defer span.End()
	runs, err := r.steerBatch(ls, zs)
	if err != nil {
		return nil, fmt.Errorf("rfnet: objects: %w", err)
	}
	var placedObjs []placed
	for j, run := range runs {
		o := &s.Objects[j]
		obj := r.tl.Begin("object", "index", j, "name", o.Name, "prompt", o.Prompt, "box", o.Box, "single_object_box", o.SOBox)
		if err := r.finishObject(res, s, j, run, base, &placedObjs); err != nil {
			return nil, err
		}
		obj.End()
	}
	span.End()
	r.stage(res, "objects", start)
	return placedObjs, nil
}

// specOf is plan's objects and prompts under the config: SAA picks each
// object's descriptions (its results for the report), then the prompts and
// their tokens' positions.
func (r *runner) specOf(plan *llm.Plan) (*spec, []SAAResult, error) {
	c := r.cfg
	s := newSpec(plan, c)
	span := r.tl.Begin("saa", "enabled", c.SAA, "cross_object", c.SAACrossObject)
	saa := runSAA(s.Objects, c, textEncoder(r.EncodePrompt))
	span.End()
	if err := s.buildPrompts(r.Tokenizer); err != nil {
		return nil, nil, err
	}
	return s, saa, nil
}

// objectStarts are the single-object runs' starting latents: the
// background noise bg with each object's own noise blended into its
// single-object box, scaled by the scheduler's initial sigma.
func (r *runner) objectStarts(s *spec, bg []float64, sigma float64) []*tensor.Tensor {
	c := r.cfg
	ch, h, w := r.Variant.UNet.InChannels, c.Height/8, c.Width/8
	seeds := fgSeeds(c, len(s.Objects))
	zs := make([]*tensor.Tensor, len(s.Objects))
	for j := range s.Objects {
		zs[j] = toLatent(r.Backend, r.DType, objectNoise(bg, seeds[j], s.Objects[j].SOBox, ch, h, w, c.FgBlending), ch, h, w, sigma)
	}
	return zs
}

// objectLoop is object j's single-object run: its prompt against the shared
// SO negative, steered into its single-object box (its masks uploaded for
// the attention grids).
func (r *runner) objectLoop(s *spec, j int, soUncond *tensor.Tensor, grids map[string]attnGrid) (loop, error) {
	c := r.cfg
	o := &s.Objects[j]
	cond, _ := r.EncodePrompt(o.Prompt)
	sc, err := r.newScheduler()
	if err != nil {
		return loop{}, err
	}
	masks := newKeyMasks(r.Backend, r.DType, grids, c.SteeringKeys, o.SOBox)
	return loop{stage: "object", object: j, sched: sc, cond: cond, uncond: soUncond, keys: c.SteeringKeys,
		scale: c.LossScale, threshold: c.LossThreshold, maxIter: c.MaxIter, maxIndexStep: c.MaxIndexStep,
		remeasure: c.RemeasureLoss, save: append([]string{c.ObjectKey}, c.SteeringKeys...), saveTokens: []int{o.Word},
		loss: func(_ int, maps map[string]capture) (steeringLoss, error) {
			total, err := boxLoss(maps, c.SteeringKeys, o.Tokens, o.SOBox, masks, c)
			return steeringLoss{total: total}, err
		}}, nil
}

// finishObject turns object j's single-object run into its result: the
// decoded image, the mask from its saliency, the alignment onto its scene
// box and the placed latents the composition pastes; the same whether the
// runs went one by one or as a batch.
func (r *runner) finishObject(res *Result, s *spec, j int, run *loopResult, base int, placedObjs *[]placed) error {
	c := r.cfg
	o := &s.Objects[j]
	h, w := res.LatentH, res.LatentW
	if err := r.checkResult(run.latents[len(run.latents)-1], fmt.Sprintf("object %s", llm.Quote(o.Name))); err != nil {
		return err
	}
	decode := r.tl.Begin("vae decode")
	or := ObjectResult{Name: o.Name, Prompt: o.Prompt, Box: o.Box, SOBox: o.SOBox,
		Image: r.DecodeImage(run.latents[len(run.latents)-1])}
	decode.End()
	if err := r.CheckFinite(or.Image, fmt.Sprintf("rfnet: object %s: the decoded image", llm.Quote(o.Name)), "vae"); err != nil {
		return err
	}
	maskSpan := r.tl.Begin("mask and alignment")
	saved := run.saved[0] // of the object's word
	sal, ok := saliency(saved, c.ObjectKey, c.AggStart)
	if !ok { // fewer steps than the aggregation start: use every step
		sal, _ = saliency(saved, c.ObjectKey, 0)
	}
	mask, method, choice, err := r.objectMask(sal, or.Image, o.SOBox, h, w)
	if err != nil {
		return fmt.Errorf("rfnet: object %s: %w", llm.Quote(o.Name), err)
	}
	or.MaskMethod, or.SAM = method, choice
	center := centerOf(mask)
	sh := alignment(center, h, w, o.Box, base, c.HorizontalShiftOnly)
	or.Mask, or.Saliency, or.SalH, or.SalW = mask.v, sal.v, sal.h, sal.w
	or.Shift[0], or.Shift[1] = sh.at(w, h)
	host := make([][]float64, len(run.latents))
	for i, z := range run.latents {
		host[i] = z.Float64s()
	}
	p := place(host, mask, saved, sh)
	*placedObjs = append(*placedObjs, p)
	or.AlignedMask = p.mask.v
	maskSpan.Set("shift", or.Shift)
	maskSpan.End()
	res.Objects = append(res.Objects, or)
	res.Geometry.Objects = append(res.Geometry.Objects, objectGeometry(r.Tokenizer, o, res.SAA[j], center, sh, run.iterations, h, w))
	return nil
}

// checkResult fails on non-finite final latents of a stage (the steering
// losses are checked as they come).
func (r *runner) checkResult(z *tensor.Tensor, stage string) error {
	return r.CheckFinite(z, "rfnet: "+stage+": the final latents", "unet")
}

// overallLoss is L_all = L_sup + L_ref (§10.2-10.4), each divided by P·|K|,
// with the two terms apart for the trace. masks are the scene boxes' at the
// steering keys' grids and refs the reference term's constants at step
// (nil, or refs of another step: uploaded here).
func overallLoss(maps map[string]capture, s *spec, objs []placed, step int, masks *overallMasks, refs *references, c Config) (steeringLoss, error) {
	if masks == nil {
		masks = overallMasksOf(maps, s, c.SteeringKeys)
	}
	if c.ReferenceConstraint && (refs == nil || refs.step != step) {
		if b, d, ok := placeOf(maps); ok {
			refs = newReferences(b, d, objs, step, masks, c.SteeringKeys, c.RefEps)
		}
	}
	var sup, ref *tensor.Tensor
	for _, k := range c.SteeringKeys {
		cp, ok := maps[k]
		if !ok {
			return steeringLoss{}, fmt.Errorf("rfnet: steering key %q was not captured", k)
		}
		for i, p := range s.Phrases {
			if c.Suppression {
				m, ok := masks.phrases[i][k]
				if !ok {
					return steeringLoss{}, fmt.Errorf("rfnet: no mask of %s at layer %s", llm.Quote(p.Text), k)
				}
				sup = add(sup, boxTerm(cp, p.Tokens, m, c.FgTopP, c.OverallBgTopP, 0, c.SuppressionWeight))
			}
			if c.ReferenceConstraint {
				var lp *tensor.Tensor
				for _, j := range p.Objects {
					if _, ok := objs[j].saved[step][k]; !ok {
						return steeringLoss{}, fmt.Errorf("rfnet: no reference attention of %s at step %d, layer %s", llm.Quote(s.Objects[j].Name), step, k)
					}
					m, masked := masks.objects[j][k]
					ref, ok := refs.objects[j][k]
					if !masked || !ok {
						return steeringLoss{}, fmt.Errorf("rfnet: no mask of %s at layer %s", llm.Quote(s.Objects[j].Name), k)
					}
					lp = add(lp, refTerm(cp, p.Word, ref, m, c.RefEps))
				}
				ref = add(ref, lp.Scale(c.RefScale*c.RefWeight/float64(len(p.Objects))))
			}
		}
	}
	norm := 1 / float64(len(s.Phrases)*len(c.SteeringKeys))
	var l steeringLoss
	if sup != nil {
		l.suppression = sup.Scale(norm)
		l.total = l.suppression
	}
	if ref != nil {
		l.reference = ref.Scale(norm)
		l.total = add(l.total, l.reference)
	}
	return l, nil
}

func keys(m map[string]unet.Layer) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
