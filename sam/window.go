package sam

import "github.com/rfnet/rfnet-native/tensor"

// windowPartition cuts x [B, H, W, C] into windows [B·nH·nW, win, win, C], in
// row-major window order, after padding H and W with zeros up to multiples of win
// (the original window_partition; the padded tokens take part in attention, as there).
func windowPartition(x *tensor.Tensor, win int) *tensor.Tensor {
	b, h, w, c := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	ph, pw := padTo(h, win), padTo(w, win)
	if pw > w {
		x = tensor.Concat(2, x, tensor.Zeros(x.Backend(), x.DType(), b, h, pw-w, c))
	}
	if ph > h {
		x = tensor.Concat(1, x, tensor.Zeros(x.Backend(), x.DType(), b, ph-h, pw, c))
	}
	nh, nw := ph/win, pw/win
	return x.Reshape(b, nh, win, nw, win, c).Permute(0, 1, 3, 2, 4, 5).Reshape(b*nh*nw, win, win, c)
}

// windowUnpartition is windowPartition's inverse: windows [B·nH·nW, win, win, C]
// back to [B, H, W, C], the padding dropped.
func windowUnpartition(x *tensor.Tensor, win, b, h, w int) *tensor.Tensor {
	ph, pw := padTo(h, win), padTo(w, win)
	c := x.Dim(3)
	x = x.Reshape(b, ph/win, pw/win, win, win, c).Permute(0, 1, 3, 2, 4, 5).Reshape(b, ph, pw, c)
	return x.Narrow(1, 0, h).Narrow(2, 0, w)
}

// padTo rounds n up to a multiple of win.
func padTo(n, win int) int { return (n + win - 1) / win * win }
