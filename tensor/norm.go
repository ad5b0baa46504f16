package tensor

import "fmt"

type layerNormAttr struct{ rows, cols int }

// GroupNorm normalizes x [N, C, ...] over groups of C/groups channels and all
// remaining axes, then scales by gamma [C] and shifts by beta [C] (either may be nil).
func (t *Tensor) GroupNorm(groups int, gamma, beta *Tensor, eps float64) *Tensor {
	return t.groupNorm("group_norm", nil, groups, gamma, beta, eps, false)
}

// GroupNormSiLU is GroupNorm followed by SiLU, as one op: one pass over x
// forward and one backward, which recomputes the norm's output instead of
// keeping it. In a 16-bit dtype the norm's output is not rounded before the
// SiLU, so results differ from the pair by that one rounding.
func (t *Tensor) GroupNormSiLU(groups int, gamma, beta *Tensor, eps float64) *Tensor {
	return t.groupNorm("group_norm_silu", nil, groups, gamma, beta, eps, true)
}

// AddGroupNormSiLU is t.Add(shift.Reshape(N, C, 1, ...)).GroupNormSiLU(...)
// as one op, for shift [N, C] (a ResNet block's time embedding): the sum is
// neither stored nor, in a 16-bit dtype, rounded. A nil shift adds nothing.
func (t *Tensor) AddGroupNormSiLU(shift *Tensor, groups int, gamma, beta *Tensor, eps float64) *Tensor {
	return t.groupNorm("add_group_norm_silu", shift, groups, gamma, beta, eps, true)
}

func (t *Tensor) groupNorm(op string, shift *Tensor, groups int, gamma, beta *Tensor, eps float64, silu bool) *Tensor {
	if t.Rank() < 2 || groups < 1 || t.shape[1]%groups != 0 {
		panic(fmt.Sprintf("tensor: %s: %d groups for input %v", op, groups, t.shape))
	}
	if shift != nil && !shift.shape.Equal(Shape{t.shape[0], t.shape[1]}) {
		panic(fmt.Sprintf("tensor: %s: shift has shape %v, want [%d %d] for input %v", op, shift.shape, t.shape[0], t.shape[1], t.shape))
	}
	checkVec(op, "gamma", gamma, t.shape[1])
	checkVec(op, "beta", beta, t.shape[1])
	requireUntracked(op, gamma, beta)
	p := GroupNormParams{N: t.shape[0], C: t.shape[1], HW: t.Numel() / (t.shape[0] * t.shape[1]), Groups: groups, Eps: eps, SiLU: silu}
	y, mean, rstd := t.b.GroupNorm(t.buf, bufOf(shift), bufOf(gamma), bufOf(beta), p)
	out := t.derive(y, t.shape)
	record(OpGroupNorm, out, []*Tensor{t, gamma, beta, shift},
		[]*Tensor{t.derive(mean, Shape{p.N, groups}), t.derive(rstd, Shape{p.N, groups})}, p)
	return out
}

// LayerNorm normalizes over the last axis and applies gamma and beta (either may be nil).
func (t *Tensor) LayerNorm(gamma, beta *Tensor, eps float64) *Tensor {
	cols := t.Dim(-1)
	rows := t.Numel() / cols
	checkVec("layer_norm", "gamma", gamma, cols)
	checkVec("layer_norm", "beta", beta, cols)
	requireUntracked("layer_norm", gamma, beta)
	y, mean, rstd := t.b.LayerNorm(t.buf, bufOf(gamma), bufOf(beta), rows, cols, eps)
	out := t.derive(y, t.shape)
	record(OpLayerNorm, out, []*Tensor{t, gamma, beta},
		[]*Tensor{t.derive(mean, Shape{rows}), t.derive(rstd, Shape{rows})}, layerNormAttr{rows, cols})
	return out
}

func checkVec(op, name string, v *Tensor, n int) {
	if v != nil && (v.Rank() != 1 || v.shape[0] != n) {
		panic(fmt.Sprintf("tensor: %s: %s has shape %v, want [%d]", op, name, v.shape, n))
	}
}

func bufOf(t *Tensor) Buffer {
	if t == nil {
		return nil
	}
	return t.buf
}
