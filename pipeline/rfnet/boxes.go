package rfnet

import "math"

// Box is a normalized box (x0, y0, x1, y1) in [0, 1], origin top-left.
type Box [4]float64

// centered is the single-object box (get_centered_box, §6.2): the same size,
// centered horizontally, standing on a floor at 1 - floorPadding of the height.
func (b Box) centered(floorPadding float64) Box {
	w, h := b[2]-b[0], b[3]-b[1]
	y1 := 1 - floorPadding
	return Box{0.5 - w/2, y1 - h, 0.5 + w/2, y1}
}

// raster is the box's cells on an h×w grid (scale_proportion, §6.3): corner and
// size rounded half-to-even separately, so a box's size does not depend on
// where it sits, then clamped to the grid. It returns (xa, ya, xb, yb), end-exclusive.
func (b Box) raster(h, w int) (xa, ya, xb, yb int) {
	xa = int(math.RoundToEven(b[0] * float64(w)))
	ya = int(math.RoundToEven(b[1] * float64(h)))
	bw := int(math.RoundToEven((b[2] - b[0]) * float64(w)))
	bh := int(math.RoundToEven((b[3] - b[1]) * float64(h)))
	xb, yb = xa+bw, ya+bh
	return max(xa, 0), max(ya, 0), min(xb, w), min(yb, h)
}

// mask is the raster as an h×w 0/1 grid, row-major.
func (b Box) mask(h, w int) []float64 {
	m := make([]float64, h*w)
	xa, ya, xb, yb := b.raster(h, w)
	for y := ya; y < yb; y++ {
		for x := xa; x < xb; x++ {
			m[y*w+x] = 1
		}
	}
	return m
}

// union is the cell-wise maximum of masks.
func union(ms ...[]float64) []float64 {
	out := make([]float64, len(ms[0]))
	for _, m := range ms {
		for i, v := range m {
			out[i] = math.Max(out[i], v)
		}
	}
	return out
}
