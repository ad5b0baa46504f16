package unet

import (
	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// transformer is diffusers' Transformer2DModel for continuous inputs: group
// norm, a projection in (1×1 conv in SD 1.x, linear in SD 2.x and SDXL), the
// transformer blocks over the H·W positions (one in SD 1.x/2.x, the block's
// transformer_layers_per_block in SDXL), a projection out, and the residual.
type transformer struct {
	norm            *nn.GroupNorm
	projIn, projOut *nn.Linear // linear projections, or 1×1 convs held as [C, C] matrices
	linear          bool
	blocks          []*transformerBlock
}

// transformerBlock is BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward.
type transformerBlock struct {
	norm1, norm2, norm3 *nn.LayerNorm
	attn1, attn2        *nn.Attention
	ff                  *nn.FeedForward
}

func loadTransformer(w *weights.Source, c Config, channels, heads, depth int) *transformer {
	t := &transformer{norm: nn.LoadGroupNorm(w.Sub("norm"), c.NormNumGroups, channels, 1e-6), linear: c.UseLinearProjection}
	t.projIn = loadProjection(w.Sub("proj_in"), channels, t.linear)
	t.projOut = loadProjection(w.Sub("proj_out"), channels, t.linear)
	headDim := channels / heads
	for i := 0; i < depth; i++ {
		b := w.Sub("transformer_blocks", i)
		blk := &transformerBlock{
			norm1: nn.LoadLayerNorm(b.Sub("norm1"), channels, 1e-5),
			norm2: nn.LoadLayerNorm(b.Sub("norm2"), channels, 1e-5),
			norm3: nn.LoadLayerNorm(b.Sub("norm3"), channels, 1e-5),
			attn1: nn.LoadSelfAttention(b.Sub("attn1"), channels, heads, headDim, false),
			attn2: nn.LoadAttention(b.Sub("attn2"), channels, c.CrossAttentionDim, heads, headDim, false),
			ff:    nn.LoadFeedForward(b.Sub("ff"), channels, 4*channels),
		}
		blk.attn1.Upcast, blk.attn2.Upcast = c.UpcastAttention, c.UpcastAttention
		t.blocks = append(t.blocks, blk)
	}
	return t
}

// loadProjection reads a [C, C] linear weight, or a [C, C, 1, 1] convolution
// kept as the same matrix (a 1×1 convolution is a linear map over channels).
func loadProjection(w *weights.Source, ch int, linear bool) *nn.Linear {
	if linear {
		return nn.LoadLinear(w, ch, ch, true)
	}
	return &nn.Linear{Weight: w.Tensor("weight", ch, ch, 1, 1).Reshape(ch, ch), Bias: w.Tensor("bias", ch)}
}

// forward runs x [B, C, H, W] with context (text [B, M, Cctx], perhaps
// prepared); hook(k) is the hook (nil for none) that receives block k's
// cross-attention probabilities.
func (t *transformer) forward(x *tensor.Tensor, context *Context, hook func(block int) nn.ProbsHook) *tensor.Tensor {
	b, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	// [B, C, H, W] -> [B, H·W, C]; the projection is the same map before or after
	// the permute, so the conv and linear variants differ only in their weights' shape.
	hs := t.norm.Forward(x).Reshape(b, c, h*w).Permute(0, 2, 1)
	hs = t.projIn.Forward(hs)
	for i, blk := range t.blocks {
		// Each skip connection is added where the block's last projection
		// accumulates its product.
		hs = blk.attn1.ForwardAdd(blk.norm1.Forward(hs), nil, nil, hs)
		hs = context.attendAdd(blk.attn2, blk.norm2.Forward(hs), hook(i), hs)
		hs = blk.ff.ForwardAdd(blk.norm3.Forward(hs), hs)
	}
	hs = t.projOut.Forward(hs)
	return hs.Permute(0, 2, 1).Reshape(b, c, h, w).Add(x)
}
