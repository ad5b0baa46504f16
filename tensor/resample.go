package tensor

import "fmt"

// Upsample2x is nearest-neighbour upsampling of x [N, C, H, W] to [N, C, 2H, 2W].
func (t *Tensor) Upsample2x() *Tensor {
	if t.Rank() != 4 {
		panic(fmt.Sprintf("tensor: upsample2x: shape %v, want [N C H W]", t.shape))
	}
	n, c, h, w := t.shape[0], t.shape[1], t.shape[2], t.shape[3]
	out := t.derive(t.b.Upsample2x(t.buf, n*c, h, w), Shape{n, c, 2 * h, 2 * w})
	record(OpUpsample2x, out, []*Tensor{t}, nil, nil)
	return out
}
