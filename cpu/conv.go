package cpu

import "github.com/rfnet/rfnet-native/tensor"

// conv2d lowers each sample to a GEMM: col [C·KH·KW, OH·OW] gathers the input
// patches (im2col), and out[n] = w [O, C·KH·KW] · col. A 1×1 convolution with
// stride 1 and no padding uses the input as col directly.
// The bias, then the residual, are added after each product, as the composed
// ops round (see linear in matmul.go).
func (kern[T]) conv2d(xb, wb, biasb, resb tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	x, w, bias, res := vals[T]("conv2d", xb), vals[T]("conv2d", wb), vals[T]("conv2d", biasb), vals[T]("conv2d", resb)
	oh, ow := p.OutH(), p.OutW()
	ckk, ohw, chw := p.C*p.KH*p.KW, oh*ow, p.C*p.H*p.W
	out := make([]T, p.N*p.O*ohw)
	direct := p.KH == 1 && p.KW == 1 && p.Stride == 1 && p.Pad == 0
	var col []T
	if !direct {
		col = make([]T, ckk*ohw)
	}
	for n := 0; n < p.N; n++ {
		xn := x[n*chw : (n+1)*chw]
		if direct {
			col = xn
		} else {
			im2col(xn, col, p)
		}
		on := out[n*p.O*ohw : (n+1)*p.O*ohw]
		gemm(false, false, p.O, ohw, ckk, w, col, on)
		var rn []T
		if res != nil {
			rn = res[n*p.O*ohw : (n+1)*p.O*ohw]
		}
		addAfter(on, rn, bias, ohw, p.O)
	}
	return wrap(out)
}

// im2col writes col[(c·KH+ky)·KW+kx, oy·OW+ox] = x[c, oy·s+ky-pad, ox·s+kx-pad] (0 outside).
func im2col[T float](x, col []T, p tensor.Conv2dParams) {
	oh, ow := p.OutH(), p.OutW()
	parallelFor(p.C, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for ky := 0; ky < p.KH; ky++ {
				for kx := 0; kx < p.KW; kx++ {
					row := col[((c*p.KH+ky)*p.KW+kx)*oh*ow:][:oh*ow]
					for oy := 0; oy < oh; oy++ {
						iy := oy*p.Stride + ky - p.Pad
						dst := row[oy*ow : (oy+1)*ow]
						if iy < 0 || iy >= p.H {
							clear(dst)
							continue
						}
						src := x[(c*p.H+iy)*p.W:][:p.W]
						for ox := range dst {
							if ix := ox*p.Stride + kx - p.Pad; ix >= 0 && ix < p.W {
								dst[ox] = src[ix]
							} else {
								dst[ox] = 0
							}
						}
					}
				}
			}
		}
	})
}

// col2im is the adjoint of im2col: it adds each col entry back into the input
// position it was read from.
func col2im[T float](col, dx []T, p tensor.Conv2dParams) {
	oh, ow := p.OutH(), p.OutW()
	parallelFor(p.C, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for ky := 0; ky < p.KH; ky++ {
				for kx := 0; kx < p.KW; kx++ {
					row := col[((c*p.KH+ky)*p.KW+kx)*oh*ow:][:oh*ow]
					for oy := 0; oy < oh; oy++ {
						iy := oy*p.Stride + ky - p.Pad
						if iy < 0 || iy >= p.H {
							continue
						}
						dst := dx[(c*p.H+iy)*p.W:][:p.W]
						src := row[oy*ow : (oy+1)*ow]
						for ox, v := range src {
							if ix := ox*p.Stride + kx - p.Pad; ix >= 0 && ix < p.W {
								dst[ix] += v
							}
						}
					}
				}
			}
		}
	})
}

// conv2dBackwardInput computes dcol = wᵀ·dy[n] per sample and scatters it back with col2im.
func (kern[T]) conv2dBackwardInput(dyb, wb tensor.Buffer, p tensor.Conv2dParams) tensor.Buffer {
	dy, w := vals[T]("conv2d backward", dyb), vals[T]("conv2d backward", wb)
	oh, ow := p.OutH(), p.OutW()
	ckk, ohw, chw := p.C*p.KH*p.KW, oh*ow, p.C*p.H*p.W
	dx := make([]T, p.N*chw)
	direct := p.KH == 1 && p.KW == 1 && p.Stride == 1 && p.Pad == 0
	var col []T
	if !direct {
		col = make([]T, ckk*ohw)
	}
	for n := 0; n < p.N; n++ {
		dxn := dx[n*chw : (n+1)*chw]
		dyn := dy[n*p.O*ohw : (n+1)*p.O*ohw]
		if direct {
			gemm(true, false, ckk, ohw, p.O, w, dyn, dxn)
			continue
		}
		gemm(true, false, ckk, ohw, p.O, w, dyn, col)
		col2im(col, dxn, p)
	}
	return wrap(dx)
}
