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
func boxTerm(c capture, tokens []int, mask []float64, fgTopP, bgTopP, wFg, wBg float64) *tensor.Tensor {
	rows := c.tokenRows(tokens[0], len(tokens))
	b, d := rows.Backend(), rows.DType()
	n := c.h * c.w
	inside := count(mask)
	var term *tensor.Tensor
	if wFg != 0 {
		m := tensor.FromFloat64(b, d, tensor.Shape{n}, mask)
		fg := rows.MaskedTopKMean(m, topK(fgTopP, inside))
		term = fg.Scale(-wFg).AddScalar(wFg).Sum()
	}
	if wBg != 0 {
		m := tensor.FromFloat64(b, d, tensor.Shape{n}, inverse(mask))
		bg := rows.MaskedTopKMean(m, topK(bgTopP, n-inside)).Scale(wBg).Sum()
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
func boxLoss(maps map[string]capture, keys []string, tokens []int, box Box, c Config) (*tensor.Tensor, error) {
	var total *tensor.Tensor
	for _, k := range keys {
		cp, ok := maps[k]
		if !ok {
			return nil, fmt.Errorf("rfnet: steering key %q is not a cross-attention layer of this UNet", k)
		}
		t := boxTerm(cp, tokens, box.mask(cp.h, cp.w), c.FgTopP, c.BgTopP, c.FgWeight, c.BgWeight)
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
// ref is the reference map [heads, h·w] (a constant).
func refTerm(c capture, word int, ref []float64, mask []float64, eps float64) *tensor.Tensor {
	a := c.tokenRows(word, 1) // [heads, h·w]
	b, d := a.Backend(), a.DType()
	heads, n := a.Dim(0), a.Dim(1)
	m := tensor.FromFloat64(b, d, tensor.Shape{n}, mask)
	am := a.Mul(m)
	an := am.Div(am.Sum(1).AddScalar(eps).Reshape(heads, 1))
	rm := make([]float64, len(ref))
	for h := 0; h < heads; h++ {
		s := 0.0
		for i := 0; i < n; i++ {
			rm[h*n+i] = ref[h*n+i] * mask[i]
			s += rm[h*n+i]
		}
		for i := 0; i < n; i++ {
			rm[h*n+i] /= s + eps
		}
	}
	r := tensor.FromFloat64(b, d, tensor.Shape{heads, n}, rm)
	return an.Sub(r).Abs().Sum(1).Mean()
}
