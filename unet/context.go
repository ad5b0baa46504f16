package unet

import (
	"fmt"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
)

// Context is the text conditioning of a UNet prepared for many calls: the
// keys and values of every cross-attention layer, projected from the text
// embeddings once. The text does not change inside a generation, so the
// to_k and to_v GEMMs of its 77 tokens need not run again at each step in
// each transformer block. The caller owns it: PrepareContext before the
// loop, Free after the last call.
//
// The cross-attention probabilities depend on the queries and keys only, so a
// hook sees the same maps with a prepared context as with the raw one.
type Context struct {
	u    *UNet
	text *tensor.Tensor                      // [B, M, Cctx]
	kv   map[*nn.Attention][2]*tensor.Tensor // per cross-attention layer: keys and values [B, M, inner]
}

// PrepareContext projects the text context [B, M, Cctx] into the keys and
// values of every cross-attention layer. It must run outside a
// tensor.Scoped call that ends before the context's last use (the buffers
// would be freed with the scope); the pipelines call it before their loops.
// context must not be tracked: the keys and values are computed once, not
// recorded for every call's backward.
func (u *UNet) PrepareContext(context *tensor.Tensor) *Context {
	if context.Rank() != 3 || context.Dim(2) != u.Config.CrossAttentionDim {
		panic(fmt.Sprintf("unet: prepare context %v, want [B, M, %d]", context.Shape(), u.Config.CrossAttentionDim))
	}
	if context.Tracked() {
		panic("unet: prepare context: the context is tracked; pass it to Forward as it is")
	}
	c := &Context{u: u, text: context, kv: map[*nn.Attention][2]*tensor.Tensor{}}
	for _, t := range u.transformers() {
		for _, blk := range t.blocks {
			k, v := blk.attn2.KeysValues(context)
			c.kv[blk.attn2] = [2]*tensor.Tensor{k, v}
		}
	}
	return c
}

// Free releases the keys and values (device memory on a GPU). The context
// must not be used afterwards; the text tensor stays the caller's.
func (c *Context) Free() {
	for a, kv := range c.kv {
		kv[0].Free()
		kv[1].Free()
		delete(c.kv, a)
	}
}

// attendAdd is residual + cross-attention layer a from x to this context:
// with the prepared keys and values when there are, else projecting the text
// (a raw context handed to Forward).
func (c *Context) attendAdd(a *nn.Attention, x *tensor.Tensor, hook nn.ProbsHook, residual *tensor.Tensor) *tensor.Tensor {
	if kv, ok := c.kv[a]; ok {
		return a.ForwardKVAdd(x, kv[0], kv[1], hook, residual)
	}
	return a.ForwardAdd(x, c.text, hook, residual)
}

// transformers lists the UNet's transformers in forward order.
func (u *UNet) transformers() []*transformer {
	var ts []*transformer
	for _, blk := range u.down {
		ts = append(ts, blk.attns...)
	}
	ts = append(ts, u.midAttn)
	for _, blk := range u.up {
		ts = append(ts, blk.attns...)
	}
	return ts
}
