package cpu

import "github.com/rfnet/rfnet-native/tensor"

func (kern[T]) upsample2x(xb tensor.Buffer, planes, h, w int) tensor.Buffer {
	x := vals[T]("upsample2x", xb)
	out := make([]T, planes*4*h*w)
	parallelFor(planes, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			for y := 0; y < h; y++ {
				src := x[(p*h+y)*w:][:w]
				row := out[(p*2*h+2*y)*2*w:][:2*w]
				for i, v := range src {
					row[2*i], row[2*i+1] = v, v
				}
				copy(out[(p*2*h+2*y+1)*2*w:][:2*w], row)
			}
		}
	})
	return wrap(out)
}

func (kern[T]) upsample2xBackward(dyb tensor.Buffer, planes, h, w int) tensor.Buffer {
	dy := vals[T]("upsample2x backward", dyb)
	dx := make([]T, planes*h*w)
	parallelFor(planes, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			for y := 0; y < h; y++ {
				r0 := dy[(p*2*h+2*y)*2*w:][:2*w]
				r1 := dy[(p*2*h+2*y+1)*2*w:][:2*w]
				dst := dx[(p*h+y)*w:][:w]
				for i := range dst {
					dst[i] = r0[2*i] + r0[2*i+1] + r1[2*i] + r1[2*i+1]
				}
			}
		}
	})
	return wrap(dx)
}
