package vae

import (
	"math"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// eps is the epsilon of every group norm in the autoencoder.
const eps = 1e-6

// midBlock is UNetMidBlock2D: a ResNet block, single-head self-attention over
// the pixels with its own group norm and residual, another ResNet block.
type midBlock struct {
	res1, res2 *nn.ResBlock
	norm       *nn.GroupNorm
	attn       *nn.Attention
}

func loadMid(w *weights.Source, ch, groups int) *midBlock {
	a := w.Sub("attentions", 0)
	attn := nn.LoadSelfAttention(a, ch, 1, ch, true)
	attn.Upcast = true
	return &midBlock{
		res1: nn.LoadResBlock(w.Sub("resnets", 0), ch, ch, 0, groups, eps),
		res2: nn.LoadResBlock(w.Sub("resnets", 1), ch, ch, 0, groups, eps),
		norm: nn.LoadGroupNorm(a.Sub("group_norm"), groups, ch, eps),
		attn: attn,
	}
}

func (m *midBlock) forward(x *tensor.Tensor) *tensor.Tensor {
	x = m.res1.Forward(x, nil)
	b, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	hs := m.norm.Forward(x).Reshape(b, c, h*w).Permute(0, 2, 1)
	hs = m.attn.Forward(hs, nil, nil).Permute(0, 2, 1).Reshape(b, c, h, w)
	return m.res2.Forward(x.Add(hs), nil)
}

// Decoder turns latents into images.
type Decoder struct {
	Config    Config
	postQuant *nn.Conv2d
	convIn    *nn.Conv2d
	mid       *midBlock
	up        []*upBlock
	normOut   *nn.GroupNorm
	convOut   *nn.Conv2d
}

type upBlock struct {
	resnets []*nn.ResBlock
	up      *nn.Upsample
}

// LoadDecoder builds the decoder (and post_quant_conv) from w, rooted at the
// autoencoder. Call w.Err() afterwards.
func LoadDecoder(w *weights.Source, c Config) *Decoder {
	ch, g, n := c.BlockOutChannels, c.NormNumGroups, len(c.BlockOutChannels)
	dw := w.Sub("decoder")
	d := &Decoder{
		Config:    c,
		postQuant: nn.LoadConv2d(w.Sub("post_quant_conv"), c.LatentChannels, c.LatentChannels, 1, 1),
		convIn:    nn.LoadConv2d(dw.Sub("conv_in"), c.LatentChannels, ch[n-1], 3, 1),
		mid:       loadMid(dw.Sub("mid_block"), ch[n-1], g),
		normOut:   nn.LoadGroupNorm(dw.Sub("conv_norm_out"), g, ch[0], eps),
		convOut:   nn.LoadConv2d(dw.Sub("conv_out"), ch[0], c.OutChannels, 3, 1),
	}
	prev := ch[n-1]
	for i := 0; i < n; i++ {
		out := ch[n-1-i]
		bw := dw.Sub("up_blocks", i)
		blk := &upBlock{}
		for j := 0; j <= c.LayersPerBlock; j++ {
			in := out
			if j == 0 {
				in = prev
			}
			blk.resnets = append(blk.resnets, nn.LoadResBlock(bw.Sub("resnets", j), in, out, 0, g, eps))
		}
		if i < n-1 {
			blk.up = nn.LoadUpsample(bw.Sub("upsamplers", 0), out)
		}
		d.up = append(d.up, blk)
		prev = out
	}
	return d
}

// Decode turns latents [B, 4, h, w] (already divided by the scaling factor)
// into images [B, 3, 8h, 8w] in [-1, 1] (not clamped).
func (d *Decoder) Decode(latents *tensor.Tensor) *tensor.Tensor {
	if !latents.Tracked() {
		// Only the image outlives an untracked call: the intermediates go
		// back to the device cache as it returns.
		return tensor.Scoped(latents.Backend(), func() *tensor.Tensor { return d.decode(latents) })
	}
	return d.decode(latents)
}

func (d *Decoder) decode(latents *tensor.Tensor) *tensor.Tensor {
	x := d.convIn.Forward(d.postQuant.Forward(latents))
	x = d.mid.forward(x)
	for _, blk := range d.up {
		for _, r := range blk.resnets {
			x = r.Forward(x, nil)
		}
		if blk.up != nil {
			x = blk.up.Forward(x)
		}
	}
	return d.convOut.Forward(d.normOut.ForwardSiLU(x))
}

// Encoder turns images into latent distributions; Encode returns their mean.
type Encoder struct {
	Config  Config
	convIn  *nn.Conv2d
	down    []*downBlock
	mid     *midBlock
	normOut *nn.GroupNorm
	convOut *nn.Conv2d
	quant   *nn.Conv2d
}

type downBlock struct {
	resnets []*nn.ResBlock
	down    *nn.Downsample
}

// LoadEncoder builds the encoder (and quant_conv) from w, rooted at the
// autoencoder. Call w.Err() afterwards.
func LoadEncoder(w *weights.Source, c Config) *Encoder {
	ch, g, n := c.BlockOutChannels, c.NormNumGroups, len(c.BlockOutChannels)
	ew := w.Sub("encoder")
	e := &Encoder{
		Config:  c,
		convIn:  nn.LoadConv2d(ew.Sub("conv_in"), c.InChannels, ch[0], 3, 1),
		mid:     loadMid(ew.Sub("mid_block"), ch[n-1], g),
		normOut: nn.LoadGroupNorm(ew.Sub("conv_norm_out"), g, ch[n-1], eps),
		convOut: nn.LoadConv2d(ew.Sub("conv_out"), ch[n-1], 2*c.LatentChannels, 3, 1),
		quant:   nn.LoadConv2d(w.Sub("quant_conv"), 2*c.LatentChannels, 2*c.LatentChannels, 1, 1),
	}
	prev := ch[0]
	for i := 0; i < n; i++ {
		bw := ew.Sub("down_blocks", i)
		blk := &downBlock{}
		for j := 0; j < c.LayersPerBlock; j++ {
			in := ch[i]
			if j == 0 {
				in = prev
			}
			blk.resnets = append(blk.resnets, nn.LoadResBlock(bw.Sub("resnets", j), in, ch[i], 0, g, eps))
		}
		if i < n-1 {
			blk.down = nn.LoadDownsample(bw.Sub("downsamplers", 0), ch[i], true)
		}
		e.down = append(e.down, blk)
		prev = ch[i]
	}
	return e
}

// Encode returns the posterior mean [B, 4, H/8, W/8] of images [B, 3, H, W] in
// [-1, 1], not yet multiplied by the scaling factor.
func (e *Encoder) Encode(images *tensor.Tensor) *tensor.Tensor {
	if !images.Tracked() {
		return tensor.Scoped(images.Backend(), func() *tensor.Tensor { return e.encode(images) })
	}
	return e.encode(images)
}

func (e *Encoder) encode(images *tensor.Tensor) *tensor.Tensor {
	return e.moments(images).Narrow(1, 0, e.Config.LatentChannels)
}

// Posterior returns the latent distribution of images [B, 3, H, W] in
// [-1, 1]: its mean and standard deviation [B, 4, H/8, W/8], not yet
// multiplied by the scaling factor, as diffusers' DiagonalGaussianDistribution
// has them (the log-variance clamped to [-30, 20], std = exp(logvar/2)). A
// sample is mean + std·ε.
func (e *Encoder) Posterior(images *tensor.Tensor) (mean, std *tensor.Tensor) {
	m := tensor.Scoped(images.Backend(), func() *tensor.Tensor { return e.moments(images) })
	n := e.Config.LatentChannels
	logvar := m.Narrow(1, n, n)
	v := logvar.Float64s() // small (the latent's size): the clamp and exp are done on the host
	for i, lv := range v {
		v[i] = math.Exp(0.5 * min(max(lv, -30), 20))
	}
	return m.Narrow(1, 0, n), tensor.FromFloat64(m.Backend(), m.DType(), logvar.Shape(), v)
}

// moments is the encoder's output [B, 2·latent, H/8, W/8]: the mean, then the log-variance.
func (e *Encoder) moments(images *tensor.Tensor) *tensor.Tensor {
	x := e.convIn.Forward(images)
	for _, blk := range e.down {
		for _, r := range blk.resnets {
			x = r.Forward(x, nil)
		}
		if blk.down != nil {
			x = blk.down.Forward(x)
		}
	}
	x = e.mid.forward(x)
	return e.quant.Forward(e.convOut.Forward(e.normOut.ForwardSiLU(x)))
}
