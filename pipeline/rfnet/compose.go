package rfnet

import (
	"math"
	"sort"
)

// shift is an integer displacement on the base grid (the coarsest attention
// grid): the latent and every attention grid move by the same fraction of the
// image (§9.1 quantizes on 8 cells, the 8×8 middle block of a 64×64 latent).
type shift struct {
	dx, dy int // in base cells
	base   int // base grid size (cells across)
	// exact is the offset before quantization, in fractions of the image
	// (geometry.json reports it).
	exact [2]float64
}

// at scales the shift to a grid of size n.
func (s shift) at(nx, ny int) (int, int) {
	return s.dx * nx / s.base, s.dy * ny / s.base
}

// massCenter is a mask's cell count and the sums of its cells' indices (not
// cell centers, as the reference computes the center of mass, §9.1).
type massCenter struct {
	area       int
	sumX, sumY float64
}

func centerOf(m grid) massCenter {
	var c massCenter
	for y := 0; y < m.h; y++ {
		for x := 0; x < m.w; x++ {
			if m.v[y*m.w+x] > 0 {
				c.sumX += float64(x)
				c.sumY += float64(y)
				c.area++
			}
		}
	}
	return c
}

// cells is the center of mass in cell indices (x, y); zero for an empty mask.
func (c massCenter) cells() [2]float64 {
	if c.area == 0 {
		return [2]float64{}
	}
	return [2]float64{c.sumX / float64(c.area), c.sumY / float64(c.area)}
}

// alignment is the offset from the center of mass c of an h×w mask to the
// center of the object's box in the scene, quantized on the base grid (§9.1).
func alignment(c massCenter, h, w int, b Box, base int, horizontalOnly bool) shift {
	if c.area == 0 {
		return shift{base: base}
	}
	// Normalized by the grid size, as the reference does.
	n := float64(c.area)
	dx := (b[0]+b[2])/2 - c.sumX/(n*float64(w))
	dy := (b[1]+b[3])/2 - c.sumY/(n*float64(h))
	if horizontalOnly {
		dy = 0
	}
	return shift{dx: int(math.RoundToEven(dx * float64(base))), dy: int(math.RoundToEven(dy * float64(base))), base: base,
		exact: [2]float64{dx, dy}}
}

// shifted moves planes of h×w cells by (dx, dy) with zero fill; valid marks the
// cells that received content.
func shifted(v []float64, h, w, dx, dy int) (out, valid []float64) {
	out = make([]float64, len(v))
	valid = make([]float64, h*w)
	planes := len(v) / (h * w)
	for y := 0; y < h; y++ {
		sy := y - dy
		if sy < 0 || sy >= h {
			continue
		}
		for x := 0; x < w; x++ {
			sx := x - dx
			if sx < 0 || sx >= w {
				continue
			}
			valid[y*w+x] = 1
			for p := 0; p < planes; p++ {
				out[p*h*w+y*w+x] = v[p*h*w+sy*w+sx]
			}
		}
	}
	return out, valid
}

// placed is one object's run after alignment: its latents at every step, mask
// and saved attention maps moved onto its box.
type placed struct {
	latents [][]float64 // [steps+1][ch·h·w]
	valid   []float64   // where the shifted latents hold content
	mask    grid
	saved   []savedMaps
	area    int
}

// place shifts an object's run by s.
func place(latents [][]float64, mask grid, saved []savedMaps, s shift) placed {
	h, w := mask.h, mask.w
	dx, dy := s.at(w, h)
	p := placed{}
	for _, l := range latents {
		out, valid := shifted(l, h, w, dx, dy)
		p.latents = append(p.latents, out)
		p.valid = valid
	}
	mv, _ := shifted(mask.v, h, w, dx, dy)
	p.mask = grid{h, w, mv}
	p.area = count(mv)
	for _, step := range saved {
		moved := savedMaps{}
		for k, sm := range step {
			ddx, ddy := s.at(sm.w, sm.h)
			v, _ := shifted(sm.v, sm.h, sm.w, ddx, ddy)
			moved[k] = savedMap{heads: sm.heads, h: sm.h, w: sm.w, v: v}
		}
		p.saved = append(p.saved, moved)
	}
	return p
}

// composition is the pasted latent trajectory C[s] and the frozen region F (§9.2).
type composition struct {
	latents [][]float64
	frozen  []float64 // h·w, 1 inside the union of the objects' masks
}

// compose pastes the objects' shifted trajectories into the background, the
// largest mask first (stable, ties by object order), so smaller objects end on
// top. With boxToBg, the first latent also receives each object's own initial
// noise in the box around its mask (grown by one cell), except where the shift
// left no content there (the background noise stays, §14.16).
func compose(bg []float64, objs []placed, steps, ch, h, w int, boxToBg bool) composition {
	order := make([]int, len(objs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return objs[order[a]].area > objs[order[b]].area })
	c := composition{latents: make([][]float64, steps+1), frozen: make([]float64, h*w)}
	c.latents[0] = append([]float64(nil), bg...)
	for s := 1; s <= steps; s++ {
		c.latents[s] = make([]float64, ch*h*w)
	}
	if boxToBg {
		for _, j := range order {
			o := objs[j]
			xa, ya, xb, yb := w, h, -1, -1
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if o.mask.v[y*w+x] > 0 {
						xa, ya, xb, yb = min(xa, x), min(ya, y), max(xb, x), max(yb, y)
					}
				}
			}
			if xb < 0 {
				continue
			}
			xa, ya, xb, yb = max(xa-1, 0), max(ya-1, 0), min(xb+1, w-1), min(yb+1, h-1)
			for y := ya; y <= yb; y++ {
				for x := xa; x <= xb; x++ {
					if o.valid[y*w+x] == 0 {
						continue
					}
					for k := 0; k < ch; k++ {
						i := k*h*w + y*w + x
						c.latents[0][i] = o.latents[0][i]
					}
				}
			}
		}
	}
	for _, j := range order {
		o := objs[j]
		for s := 0; s <= steps; s++ {
			for i, mv := range o.mask.v {
				if mv == 0 {
					continue
				}
				for k := 0; k < ch; k++ {
					c.latents[s][k*h*w+i] = o.latents[s][k*h*w+i]
				}
			}
		}
		for i, mv := range o.mask.v {
			if mv > 0 {
				c.frozen[i] = 1
			}
		}
	}
	return c
}
