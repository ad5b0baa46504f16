package rfnet

import (
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/tensor"
)

// capture is one layer's cross-attention probabilities from a steering pass:
// probs [1, heads, h·w, 77] on the tape.
type capture struct {
	probs *tensor.Tensor
	h, w  int
}

// tokenRows returns the probabilities of tokens [first, first+n) as
// [heads·n, h·w]: one row per (head, token) over the grid.
func (c capture) tokenRows(first, n int) *tensor.Tensor {
	p := c.probs.Permute(0, 1, 3, 2) // [1, heads, 77, h·w]
	return p.Narrow(2, first, n).Reshape(-1, c.h*c.w)
}

// steeringLoss is a steering loss and, in the overall run, the parts of its
// two constraints (nil when off, and in a single-object run); the parts
// add up to total.
type steeringLoss struct {
	total, suppression, reference *tensor.Tensor
}

func topK(p float64, n int) int { return max(1, int(math.Floor(p*float64(n)))) }

func count(m []float64) int {
	n := 0
	for _, v := range m {
		if v > 0 {
			n++
		}
	}
	return n
}

func inverse(m []float64) []float64 {
	out := make([]float64, len(m))
	for i, v := range m {
		out[i] = 1 - v
	}
	return out
}

// boxTerm is Σ_h [w_fg·(1 - topmean_kfg(A⊙M)) + w_bg·topmean_kbg(A⊙(1-M))],
// averaged over the phrase's tokens (heads summed, §7.2). A zero weight drops its term.
func boxTerm(c capture, tokens []int, m gridMask, fgTopP, bgTopP, wFg, wBg float64) *tensor.Tensor {
	rows := c.tokenRows(tokens[0], len(tokens))
	n := c.h * c.w
	var term *tensor.Tensor
	if wFg != 0 {
		fg := rows.MaskedTopKMean(m.in, topK(fgTopP, m.inside))
		term = fg.Scale(-wFg).AddScalar(wFg).Sum()
	}
	if wBg != 0 {
		bg := rows.MaskedTopKMean(m.out, topK(bgTopP, n-m.inside)).Scale(wBg).Sum()
		if term == nil {
			term = bg
		} else {
			term = term.Add(bg)
		}
	}
	return term.Scale(1 / float64(len(tokens)))
}

// boxLoss is the single-object loss L_box (§7.2) with P = 1: the object's
// phrase tokens against its box at every steering key, averaged over keys.
// masks are box's at the keys' grids (nil: uploaded here, masksOf).
func boxLoss(maps map[string]capture, keys []string, tokens []int, box Box, masks keyMasks, c Config) (*tensor.Tensor, error) {
	if masks == nil {
		masks = masksOf(maps, keys, box)
	}
	var total *tensor.Tensor
	for _, k := range keys {
		cp, ok := maps[k]
		m, masked := masks[k]
		if !ok || !masked {
			return nil, fmt.Errorf("rfnet: steering key %q is not a cross-attention layer of this UNet", k)
		}
		t := boxTerm(cp, tokens, m, c.FgTopP, c.BgTopP, c.FgWeight, c.BgWeight)
		total = add(total, t)
	}
	return total.Scale(1 / float64(len(keys))), nil
}

func add(a, b *tensor.Tensor) *tensor.Tensor {
	if a == nil {
		return b
	}
	return a.Add(b)
}

// refTerm is the reference constraint for one box at one key (§10.3): the
// current word-token attention and the reference one, each masked to the box
// and normalized to sum 1 inside it, compared with L1 per head, heads averaged.
// ref is the reference map [heads, h·w] so masked and normalized
// (normalizedReference), a constant.
func refTerm(c capture, word int, ref *tensor.Tensor, m gridMask, eps float64) *tensor.Tensor {
	a := c.tokenRows(word, 1) // [heads, h·w]
	heads := a.Dim(0)
	am := a.Mul(m.in)
	an := am.Div(am.Sum(1).AddScalar(eps).Reshape(heads, 1))
	return an.Sub(ref).Abs().Sum(1).Mean()
}

// normalizedReference is a saved reference map [heads, h·w] masked to the
// box and normalized to sum 1 inside it per head (refTerm's constant),
// computed on the host.
func normalizedReference(ref savedMap, m gridMask, eps float64) []float64 {
	n := ref.h * ref.w
	rm := make([]float64, len(ref.v))
	for h := 0; h < ref.heads; h++ {
		s := 0.0
		for i := 0; i < n; i++ {
			rm[h*n+i] = ref.v[h*n+i] * m.host[i]
			s += rm[h*n+i]
		}
		for i := 0; i < n; i++ {
			rm[h*n+i] /= s + eps
		}
	}
	return rm
}
