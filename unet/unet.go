package unet

import (
	"errors"
	"fmt"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// UNet is a loaded UNet2DConditionModel.
type UNet struct {
	Config             Config
	timeLin1, timeLin2 *nn.Linear
	addLin1, addLin2   *nn.Linear // add_embedding, for text_time conditioning; nil without
	convIn             *nn.Conv2d
	down               []*downBlock
	midRes             [2]*nn.ResBlock
	midAttn            *transformer
	up                 []*upBlock
	normOut            *nn.GroupNorm
	convOut            *nn.Conv2d
}

type downBlock struct {
	resnets []*nn.ResBlock
	attns   []*transformer // empty for DownBlock2D
	down    *nn.Downsample // nil for the last block
}

type upBlock struct {
	resnets []*nn.ResBlock
	attns   []*transformer
	up      *nn.Upsample
}

// Load builds the UNet from w. Call w.Err() afterwards.
func Load(w *weights.Source, c Config) *UNet {
	ch := c.BlockOutChannels
	temb := 4 * ch[0]
	g, eps := c.NormNumGroups, c.NormEps
	u := &UNet{
		Config:   c,
		timeLin1: nn.LoadLinear(w.Sub("time_embedding", "linear_1"), ch[0], temb, true),
		timeLin2: nn.LoadLinear(w.Sub("time_embedding", "linear_2"), temb, temb, true),
		convIn:   nn.LoadConv2d(w.Sub("conv_in"), c.InChannels, ch[0], 3, 1),
		normOut:  nn.LoadGroupNorm(w.Sub("conv_norm_out"), g, ch[0], eps),
		convOut:  nn.LoadConv2d(w.Sub("conv_out"), ch[0], c.OutChannels, 3, 1),
	}
	if c.AdditionEmbedType == TextTime {
		u.addLin1 = nn.LoadLinear(w.Sub("add_embedding", "linear_1"), c.ProjectionClassEmbeddingsInputDim, temb, true)
		u.addLin2 = nn.LoadLinear(w.Sub("add_embedding", "linear_2"), temb, temb, true)
	}
	n := c.Levels()
	for i := 0; i < n; i++ {
		bw := w.Sub("down_blocks", i)
		in := ch[max(i-1, 0)]
		blk := &downBlock{}
		for j := 0; j < c.LayersPerBlock; j++ {
			rin := ch[i]
			if j == 0 {
				rin = in
			}
			blk.resnets = append(blk.resnets, nn.LoadResBlock(bw.Sub("resnets", j), rin, ch[i], temb, g, eps))
			if c.downHasAttention(i) {
				blk.attns = append(blk.attns, loadTransformer(bw.Sub("attentions", j), c, ch[i], c.HeadsOf(i), c.TransformerLayersOf(i)))
			}
		}
		if i < n-1 {
			blk.down = nn.LoadDownsample(bw.Sub("downsamplers", 0), ch[i], false)
		}
		u.down = append(u.down, blk)
	}
	last := ch[n-1]
	u.midRes[0] = nn.LoadResBlock(w.Sub("mid_block", "resnets", 0), last, last, temb, g, eps)
	u.midAttn = loadTransformer(w.Sub("mid_block", "attentions", 0), c, last, c.HeadsOf(n-1), c.TransformerLayersOf(n-1))
	u.midRes[1] = nn.LoadResBlock(w.Sub("mid_block", "resnets", 1), last, last, temb, g, eps)
	for i := 0; i < n; i++ {
		// Channels as diffusers computes them (reversed block_out_channels).
		level := n - 1 - i
		out := ch[level]
		prev := ch[min(level+1, n-1)]
		skipIn := ch[max(level-1, 0)]
		bw := w.Sub("up_blocks", i)
		blk := &upBlock{}
		for j := 0; j <= c.LayersPerBlock; j++ {
			rin, skip := out, out
			if j == 0 {
				rin = prev
			}
			if j == c.LayersPerBlock {
				skip = skipIn
			}
			blk.resnets = append(blk.resnets, nn.LoadResBlock(bw.Sub("resnets", j), rin+skip, out, temb, g, eps))
			if c.upHasAttention(i) {
				blk.attns = append(blk.attns, loadTransformer(bw.Sub("attentions", j), c, out, c.HeadsOf(level), c.TransformerLayersOf(level)))
			}
		}
		if i < n-1 {
			blk.up = nn.LoadUpsample(bw.Sub("upsamplers", 0), out)
		}
		u.up = append(u.up, blk)
	}
	return u
}

// Layer names a cross-attention layer and the grid its queries cover.
type Layer struct {
	Key  string // down.{block}.{attention}.{transformer}, mid.0.0.0, up.{block}.{attention}.{transformer}
	H, W int    // the grid: query n is cell (n / W, n % W)
}

// Hook receives the cross-attention probabilities [B, heads, H·W, tokens] of a
// layer; returning true stops the forward pass right there.
type Hook func(layer Layer, probs *tensor.Tensor) (stop bool)

// ErrStopped is returned by Forward when the hook stopped it.
var ErrStopped = errors.New("unet: forward stopped by the attention hook")

type stopSignal struct{}

// Forward predicts the noise (or v) for latent [B, C, H, W] at the given
// timesteps (one per batch entry) under text context [B, 77, Cctx]. hook may
// be nil. A UNet with text_time conditioning (SDXL) needs ForwardAdded.
func (u *UNet) Forward(latent *tensor.Tensor, timesteps []float64, context *tensor.Tensor, hook Hook) (*tensor.Tensor, error) {
	return u.ForwardAdded(latent, timesteps, context, nil, hook)
}

// Added is SDXL's extra conditioning (diffusers' added_cond_kwargs).
type Added struct {
	// TextEmbeds is the pooled text embedding [B, P].
	TextEmbeds *tensor.Tensor
	// TimeIDs holds K time ids per batch entry, row after row (B·K values; the
	// refiner's K = 5: original height and width, crop top and left, aesthetic score).
	TimeIDs []float64
}

// ForwardAdded is Forward with SDXL's extra conditioning, which a UNet with
// addition_embed_type text_time requires and any other refuses.
func (u *UNet) ForwardAdded(latent *tensor.Tensor, timesteps []float64, context *tensor.Tensor, added *Added, hook Hook) (out *tensor.Tensor, err error) {
	return u.ForwardContext(latent, timesteps, &Context{u: u, text: context}, added, hook)
}

// ForwardContext is ForwardAdded (added nil without text_time conditioning)
// under a context from PrepareContext: the cross-attention layers use its
// keys and values instead of projecting the text again.
func (u *UNet) ForwardContext(latent *tensor.Tensor, timesteps []float64, c *Context, added *Added, hook Hook) (out *tensor.Tensor, err error) {
	if c.u != u {
		return nil, errors.New("unet: the context was prepared by another UNet")
	}
	context := c.text
	if len(timesteps) != latent.Dim(0) || context.Dim(0) != latent.Dim(0) {
		panic(fmt.Sprintf("unet: latent %v, %d timesteps, context %v", latent.Shape(), len(timesteps), context.Shape()))
	}
	if err := u.checkAdded(latent.Dim(0), added); err != nil {
		return nil, err
	}
	if hook == nil && !latent.Tracked() && !context.Tracked() {
		// Only the prediction outlives a plain call (no tape keeps the
		// intermediates, no hook is shown the maps): the intermediates go
		// back to the device cache as it returns.
		return tensor.Scoped(latent.Backend(), func() *tensor.Tensor {
			return u.forward(latent, u.timeEmbedding(latent, timesteps, added), c, nil)
		}), nil
	}
	if hook != nil {
		defer stopped(&out, &err)
	}
	return u.forward(latent, u.timeEmbedding(latent, timesteps, added), c, hook), nil
}

// TimeProjection is the sinusoidal embedding of the timesteps that the time
// embedding's MLP takes, [len(timesteps), BlockOutChannels[0]] (diffusers'
// time_proj). It is computed on the host and uploaded; ForwardProjected
// takes it as a tensor, so that a call can be captured as a CUDA graph (an
// upload cannot be in one) and replayed with the next step's projection.
func (u *UNet) TimeProjection(b tensor.Backend, d tensor.DType, timesteps []float64) *tensor.Tensor {
	c := u.Config
	return tensor.TimestepEmbedding(b, d, timesteps, c.BlockOutChannels[0], c.FlipSinToCos, c.FreqShift, 10000)
}

// ForwardProjected is ForwardContext without hooks, from the timesteps'
// projection (TimeProjection) instead of the timesteps: every input a device
// tensor (the prepared context's keys and values too), no host work. A UNet
// with text_time conditioning is refused (its time ids are host values too).
func (u *UNet) ForwardProjected(latent, proj *tensor.Tensor, c *Context) (*tensor.Tensor, error) {
	if err := u.checkProjected(latent, proj, c); err != nil {
		return nil, err
	}
	return tensor.Scoped(latent.Backend(), func() *tensor.Tensor {
		return u.forward(latent, u.timeMLP(proj.To(latent.DType()), nil), c, nil)
	}), nil
}

// ForwardProjectedHook is ForwardProjected with a hook, which may stop the
// call (ErrStopped), and a latent that may be tracked: still no host work,
// so that RFNet's guidance pass (forward to the last map it reads, then
// backward) can be captured as a CUDA graph. The intermediates are the
// caller's (a tape may keep them): run it in a scope.
func (u *UNet) ForwardProjectedHook(latent, proj *tensor.Tensor, c *Context, hook Hook) (out *tensor.Tensor, err error) {
	if err := u.checkProjected(latent, proj, c); err != nil {
		return nil, err
	}
	if hook != nil {
		defer stopped(&out, &err)
	}
	return u.forward(latent, u.timeMLP(proj.To(latent.DType()), nil), c, hook), nil
}

// stopped, deferred by a call with a hook, turns the hook's stop (a
// stopSignal panic out of forward) into ErrStopped; any other panic goes on.
func stopped(out **tensor.Tensor, err *error) {
	if r := recover(); r != nil {
		if _, ok := r.(stopSignal); !ok {
			panic(r)
		}
		*out, *err = nil, ErrStopped
	}
}

// checkProjected checks ForwardProjected's inputs.
func (u *UNet) checkProjected(latent, proj *tensor.Tensor, c *Context) error {
	if c.u != u {
		return errors.New("unet: the context was prepared by another UNet")
	}
	if proj.Rank() != 2 || proj.Dim(0) != latent.Dim(0) || proj.Dim(1) != u.Config.BlockOutChannels[0] || c.text.Dim(0) != latent.Dim(0) {
		return fmt.Errorf("unet: latent %v, time projection %v, context %v", latent.Shape(), proj.Shape(), c.text.Shape())
	}
	return u.checkAdded(latent.Dim(0), nil)
}

// checkAdded checks the extra conditioning fits the config for batch b.
func (u *UNet) checkAdded(b int, added *Added) error {
	c := u.Config
	if c.AdditionEmbedType != TextTime {
		if added != nil {
			return errors.New("unet: pooled text embeddings and time ids given to a UNet without text_time conditioning")
		}
		return nil
	}
	if added == nil || added.TextEmbeds == nil {
		return fmt.Errorf("unet: this UNet (addition_embed_type %q) needs the pooled text embedding and the time ids", TextTime)
	}
	p := added.TextEmbeds
	if p.Rank() != 2 || p.Dim(0) != b || len(added.TimeIDs)%b != 0 ||
		p.Dim(1)+len(added.TimeIDs)/b*c.AdditionTimeEmbedDim != c.ProjectionClassEmbeddingsInputDim {
		return fmt.Errorf("unet: pooled text embedding %v and %d time ids for a batch of %d: add_embedding takes %d = P + ids×%d",
			p.Shape(), len(added.TimeIDs), b, c.ProjectionClassEmbeddingsInputDim, c.AdditionTimeEmbedDim)
	}
	return nil
}

// timeEmbedding is the embedding every ResNet block gets: the timestep's,
// plus, with text_time conditioning, add_embedding of the pooled text
// embedding followed by the time ids' sinusoidal embeddings (diffusers'
// UNet2DConditionModel.forward: concat([text_embeds, time_embeds], -1)).
func (u *UNet) timeEmbedding(latent *tensor.Tensor, timesteps []float64, added *Added) *tensor.Tensor {
	return u.timeMLP(u.TimeProjection(latent.Backend(), latent.DType(), timesteps), added)
}

// timeMLP is timeEmbedding from the timesteps' projection proj.
func (u *UNet) timeMLP(proj *tensor.Tensor, added *Added) *tensor.Tensor {
	c := u.Config
	b, d := proj.Backend(), proj.DType()
	temb := u.timeLin2.Forward(u.timeLin1.Forward(proj).SiLU())
	if u.addLin1 == nil {
		return temb
	}
	n := proj.Dim(0)
	// add_time_proj: each time id in AdditionTimeEmbedDim channels, a row's ids side by side.
	timeIDs := tensor.TimestepEmbedding(b, d, added.TimeIDs, c.AdditionTimeEmbedDim, c.FlipSinToCos, c.FreqShift, 10000)
	timeIDs = timeIDs.Reshape(n, len(added.TimeIDs)/n*c.AdditionTimeEmbedDim)
	aug := tensor.Concat(1, added.TextEmbeds.To(d), timeIDs)
	return temb.Add(u.addLin2.Forward(u.addLin1.Forward(aug).SiLU()))
}

// forward is Forward's network under the time embedding temb; a stop by hook
// unwinds it as a stopSignal panic.
func (u *UNet) forward(latent, temb *tensor.Tensor, context *Context, hook Hook) *tensor.Tensor {
	// attnHook names the layer and turns a stop into an unwind to Forward.
	attnHook := func(prefix string, x *tensor.Tensor) func(int) nn.ProbsHook {
		return func(k int) nn.ProbsHook {
			if hook == nil {
				return nil
			}
			return func(p *tensor.Tensor) {
				if hook(Layer{Key: fmt.Sprintf("%s.%d", prefix, k), H: x.Dim(2), W: x.Dim(3)}, p) {
					panic(stopSignal{})
				}
			}
		}
	}
	x := u.convIn.Forward(latent)
	skips := []*tensor.Tensor{x}
	for i, blk := range u.down {
		for j, r := range blk.resnets {
			x = r.Forward(x, temb)
			if len(blk.attns) > 0 {
				x = blk.attns[j].forward(x, context, attnHook(fmt.Sprintf("down.%d.%d", i, j), x))
			}
			skips = append(skips, x)
		}
		if blk.down != nil {
			x = blk.down.Forward(x)
			skips = append(skips, x)
		}
	}
	x = u.midRes[0].Forward(x, temb)
	x = u.midAttn.forward(x, context, attnHook("mid.0.0", x))
	x = u.midRes[1].Forward(x, temb)
	for i, blk := range u.up {
		for j, r := range blk.resnets {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			x = r.Forward(tensor.Concat(1, x, skip), temb)
			if len(blk.attns) > 0 {
				x = blk.attns[j].forward(x, context, attnHook(fmt.Sprintf("up.%d.%d", i, j), x))
			}
		}
		if blk.up != nil {
			// Upsample to the size of the skip it meets next: with an odd size the
			// stride-2 convolution rounded up, and doubling overshoots by one.
			next := skips[len(skips)-1]
			x = blk.up.ForwardTo(x, next.Dim(2), next.Dim(3))
		}
	}
	return u.convOut.Forward(u.normOut.ForwardSiLU(x))
}

// CrossAttentionLayers lists the cross-attention layers in forward order, with
// the grid each works on for a latent of h×w.
func (u *UNet) CrossAttentionLayers(h, w int) []Layer {
	n := len(u.down)
	hs, ws := make([]int, n), make([]int, n)
	for i, blk := range u.down {
		hs[i], ws[i] = h, w
		if blk.down != nil { // a stride-2 3×3 convolution with padding 1 rounds up
			h, w = (h+1)/2, (w+1)/2
		}
	}
	var out []Layer
	add := func(prefix string, t *transformer, h, w int) {
		for k := range t.blocks {
			out = append(out, Layer{Key: fmt.Sprintf("%s.%d", prefix, k), H: h, W: w})
		}
	}
	for i, blk := range u.down {
		for j, t := range blk.attns {
			add(fmt.Sprintf("down.%d.%d", i, j), t, hs[i], ws[i])
		}
	}
	add("mid.0.0", u.midAttn, hs[n-1], ws[n-1])
	for i, blk := range u.up {
		for j, t := range blk.attns {
			add(fmt.Sprintf("up.%d.%d", i, j), t, hs[n-1-i], ws[n-1-i])
		}
	}
	return out
}
