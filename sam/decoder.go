package sam

import (
	"fmt"

	"github.com/rfnet/rfnet-native/nn"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// upscaleNormEps is the eps of the upscaling's channel layer norm: SamLayerNorm's
// default in transformers and LayerNorm2d's in the original, not in the config.
const upscaleNormEps = 1e-6

// finalNormEps is the eps of the two-way transformer's final layer norm: torch's
// nn.LayerNorm default in both implementations (the config's layer_norm_eps
// applies only to the per-block norms in transformers).
const finalNormEps = 1e-5

// MaskDecoder predicts masks from image embeddings and prompt embeddings
// (transformers' SamMaskDecoder, the original MaskDecoder): a two-way transformer
// over output tokens and image, transposed-convolution upscaling, one hypernetwork
// MLP per mask token and an IoU head.
type MaskDecoder struct {
	IoUToken            *tensor.Tensor // [1, C]
	MaskTokens          *tensor.Tensor // [masks+1, C]
	Transformer         *TwoWayTransformer
	UpscaleConv1        *UpConv
	UpscaleLayerNorm    *nn.LayerNorm
	UpscaleConv2        *UpConv
	OutputHypernetworks []*FeedForward
	IoUPredictionHead   *FeedForward
}

// LoadMaskDecoder reads mask_decoder.* (w rooted there).
func LoadMaskDecoder(w *weights.Source, c Config) *MaskDecoder {
	m := c.MaskDecoder
	hid, tokens := m.HiddenSize, m.NumMultimaskOutputs+1
	d := &MaskDecoder{
		IoUToken:          w.Tensor("iou_token.weight", 1, hid),
		MaskTokens:        w.Tensor("mask_tokens.weight", tokens, hid),
		Transformer:       loadTwoWayTransformer(w.Sub("transformer"), m),
		UpscaleConv1:      loadUpConv(w.Sub("upscale_conv1"), hid, hid/4, 2),
		UpscaleLayerNorm:  nn.LoadLayerNorm(w.Sub("upscale_layer_norm"), hid/4, upscaleNormEps),
		UpscaleConv2:      loadUpConv(w.Sub("upscale_conv2"), hid/4, hid/8, 2),
		IoUPredictionHead: loadFeedForward(w.Sub("iou_prediction_head"), hid, m.IoUHeadHiddenDim, tokens, m.IoUHeadDepth),
	}
	for i := 0; i < tokens; i++ {
		d.OutputHypernetworks = append(d.OutputHypernetworks, loadFeedForward(w.Sub("output_hypernetworks_mlps", i), hid, hid, hid/8, 3))
	}
	return d
}

// Forward predicts masks for one image: embeddings [1, C, G, G], the dense
// positional encoding [1, G·G, C], sparse prompt embeddings [1, n, C] and the
// no-mask embedding [1, C]. It returns low-resolution mask logits [1, k, 4G, 4G]
// and predicted IoU [1, k]: k = 3 (masks 1..3) with multimask, else 1 (mask 0).
func (d *MaskDecoder) Forward(emb, imagePE, sparse, noMask *tensor.Tensor, multimask bool) (lowRes, iou *tensor.Tensor) {
	b, c, g := emb.Dim(0), emb.Dim(1), emb.Dim(2)
	if b != 1 || sparse.Dim(0) != 1 {
		panic(fmt.Sprintf("sam: mask decoder: embeddings %v with prompts %v: one image and one prompt at a time", emb.Shape(), sparse.Shape()))
	}
	nMask := d.MaskTokens.Dim(0)
	tokens := tensor.Concat(1, tensor.Concat(0, d.IoUToken, d.MaskTokens).Reshape(1, 1+nMask, c), sparse)
	// src: the embedding as a sequence [1, G·G, C], plus the dense prompt (no mask).
	src := emb.Reshape(1, c, g*g).Permute(0, 2, 1).Add(noMask)
	hs, src := d.Transformer.Forward(tokens, src, imagePE)
	iouOut := hs.Narrow(1, 0, 1).Reshape(1, c)
	maskOut := hs.Narrow(1, 1, nMask) // [1, masks+1, C]

	up := d.UpscaleConv1.Forward(src.Reshape(1, g, g, c)) // channels last throughout
	up = d.UpscaleLayerNorm.Forward(up).GELU()
	up = d.UpscaleConv2.Forward(up).GELU() // [1, 4G, 4G, C/8]
	side := up.Dim(1)

	hyper := make([]*tensor.Tensor, nMask)
	for i, mlp := range d.OutputHypernetworks {
		hyper[i] = mlp.Forward(maskOut.Narrow(1, i, 1)) // [1, 1, C/8]
	}
	// masks[t, p] = hyper[t]·up[p]
	masks := tensor.MatMulT(tensor.Concat(1, hyper...), up.Reshape(1, side*side, up.Dim(3)), false, true)
	masks = masks.Reshape(1, nMask, side, side)
	iou = d.IoUPredictionHead.Forward(iouOut) // [1, masks+1]
	if multimask {
		return masks.Narrow(1, 1, nMask-1), iou.Narrow(1, 1, nMask-1)
	}
	return masks.Narrow(1, 0, 1), iou.Narrow(1, 0, 1)
}

// TwoWayTransformer lets the prompt tokens and the image attend to each other
// (transformers' SamTwoWayTransformer).
type TwoWayTransformer struct {
	Layers                []*TwoWayBlock
	FinalAttnTokenToImage *TokenAttention
	LayerNormFinalAttn    *nn.LayerNorm
}

func loadTwoWayTransformer(w *weights.Source, m MaskDecoderConfig) *TwoWayTransformer {
	t := &TwoWayTransformer{
		FinalAttnTokenToImage: loadTokenAttention(w.Sub("final_attn_token_to_image"), m.HiddenSize, m.AttentionDownsampleRate, m.NumAttentionHeads),
		LayerNormFinalAttn:    nn.LoadLayerNorm(w.Sub("layer_norm_final_attn"), m.HiddenSize, finalNormEps),
	}
	for i := 0; i < m.NumHiddenLayers; i++ {
		t.Layers = append(t.Layers, loadTwoWayBlock(w.Sub("layers", i), m, i == 0))
	}
	return t
}

// Forward runs the blocks over tokens [1, T, C] (also their positional encoding)
// and keys = the image [1, G·G, C] with its encoding keyPE, then a last
// token-to-image attention; it returns the tokens and the image.
func (t *TwoWayTransformer) Forward(tokens, keys, keyPE *tensor.Tensor) (queries, outKeys *tensor.Tensor) {
	queries = tokens
	for _, l := range t.Layers {
		queries, keys = l.Forward(queries, keys, tokens, keyPE)
	}
	attn := t.FinalAttnTokenToImage.Forward(queries.Add(tokens), keys.Add(keyPE), keys)
	return t.LayerNormFinalAttn.Forward(queries.Add(attn)), keys
}

// TwoWayBlock is self-attention of the tokens, token-to-image cross attention, a
// ReLU MLP on the tokens and image-to-token cross attention, each residual and
// post-normed. The first block's self-attention sees no positional encoding and
// replaces the tokens instead of adding to them (skip_first_layer_pe).
type TwoWayBlock struct {
	SelfAttn               *TokenAttention
	LayerNorm1             *nn.LayerNorm
	CrossAttnTokenToImage  *TokenAttention
	LayerNorm2             *nn.LayerNorm
	MLP                    *MLPBlock
	LayerNorm3, LayerNorm4 *nn.LayerNorm
	CrossAttnImageToToken  *TokenAttention
	SkipFirstLayerPE       bool
}

// loadTwoWayBlock reads one block. Its norms use mask_decoder_config.layer_norm_eps
// (1e-6), as transformers builds them; the original code uses torch's default
// 1e-5 here. We follow transformers, whose weights and numbers users get.
func loadTwoWayBlock(w *weights.Source, m MaskDecoderConfig, first bool) *TwoWayBlock {
	hid, ds, heads, eps := m.HiddenSize, m.AttentionDownsampleRate, m.NumAttentionHeads, m.LayerNormEps
	return &TwoWayBlock{
		SelfAttn:              loadTokenAttention(w.Sub("self_attn"), hid, 1, heads),
		LayerNorm1:            nn.LoadLayerNorm(w.Sub("layer_norm1"), hid, eps),
		CrossAttnTokenToImage: loadTokenAttention(w.Sub("cross_attn_token_to_image"), hid, ds, heads),
		LayerNorm2:            nn.LoadLayerNorm(w.Sub("layer_norm2"), hid, eps),
		MLP:                   loadMLPBlock(w.Sub("mlp"), hid, m.MLPDim, true),
		LayerNorm3:            nn.LoadLayerNorm(w.Sub("layer_norm3"), hid, eps),
		LayerNorm4:            nn.LoadLayerNorm(w.Sub("layer_norm4"), hid, eps),
		CrossAttnImageToToken: loadTokenAttention(w.Sub("cross_attn_image_to_token"), hid, ds, heads),
		SkipFirstLayerPE:      first,
	}
}

// Forward updates queries [1, T, C] and keys [1, G·G, C]; queryPE is the
// original tokens, keyPE the dense positional encoding.
func (b *TwoWayBlock) Forward(queries, keys, queryPE, keyPE *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if b.SkipFirstLayerPE {
		queries = b.SelfAttn.Forward(queries, queries, queries)
	} else {
		q := queries.Add(queryPE)
		queries = queries.Add(b.SelfAttn.Forward(q, q, queries))
	}
	queries = b.LayerNorm1.Forward(queries)

	k := keys.Add(keyPE)
	queries = b.LayerNorm2.Forward(queries.Add(b.CrossAttnTokenToImage.Forward(queries.Add(queryPE), k, keys)))
	queries = b.LayerNorm3.Forward(queries.Add(b.MLP.Forward(queries)))

	q := queries.Add(queryPE)
	keys = b.LayerNorm4.Forward(keys.Add(b.CrossAttnImageToToken.Forward(k, q, queries)))
	return queries, keys
}
