package rfnet

import "math"

// saliency is A16 of §7.7: an object's saved word-token attention at the
// object key, averaged over steps from start on and over heads.
func saliency(saved []savedMaps, key string, start int) (grid, bool) {
	var out grid
	n := 0
	for s := start; s < len(saved); s++ {
		sm, ok := saved[s][key]
		if !ok {
			continue
		}
		if n == 0 {
			out = newGrid(sm.h, sm.w)
		}
		hw := sm.h * sm.w
		for h := 0; h < sm.heads; h++ {
			for i := 0; i < hw; i++ {
				out.v[i] += sm.v[h*hw+i] / float64(sm.heads)
			}
		}
		n++
	}
	if n == 0 {
		return grid{}, false
	}
	for i := range out.v {
		out.v[i] /= float64(n)
	}
	return out, true
}

// gaussianBlur is scipy.ndimage.gaussian_filter(sigma, mode="reflect",
// truncate=4): a separable kernel of radius int(4σ+0.5), edges mirrored with the
// edge sample repeated (d c b a | a b c d | d c b a).
func gaussianBlur(g grid, sigma float64) grid {
	r := int(4*sigma + 0.5)
	k := make([]float64, 2*r+1)
	s := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-0.5 * x * x / (sigma * sigma))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	reflect := func(i, n int) int {
		for i < 0 || i >= n {
			if i < 0 {
				i = -i - 1
			}
			if i >= n {
				i = 2*n - i - 1
			}
		}
		return i
	}
	tmp, out := newGrid(g.h, g.w), newGrid(g.h, g.w)
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			acc := 0.0
			for j, kv := range k {
				acc += kv * g.v[y*g.w+reflect(x+j-r, g.w)]
			}
			tmp.v[y*g.w+x] = acc
		}
	}
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			acc := 0.0
			for j, kv := range k {
				acc += kv * tmp.v[reflect(y+j-r, g.h)*g.w+x]
			}
			out.v[y*g.w+x] = acc
		}
	}
	return out
}

// bilinear resizes with half-pixel centers and clamped edges (align_corners=False).
func bilinear(g grid, h, w int) grid {
	out := newGrid(h, w)
	coord := func(dst, in, outN int) (int, int, float64) {
		src := (float64(dst)+0.5)*float64(in)/float64(outN) - 0.5
		src = math.Max(src, 0)
		i0 := int(src)
		i1 := min(i0+1, in-1)
		return min(i0, in-1), i1, src - float64(i0)
	}
	for y := 0; y < h; y++ {
		y0, y1, fy := coord(y, g.h, h)
		for x := 0; x < w; x++ {
			x0, x1, fx := coord(x, g.w, w)
			top := g.v[y0*g.w+x0]*(1-fx) + g.v[y0*g.w+x1]*fx
			bot := g.v[y1*g.w+x0]*(1-fx) + g.v[y1*g.w+x1]*fx
			out.v[y*w+x] = top*(1-fy) + bot*fy
		}
	}
	return out
}

// extractMask is the SAM-free mask of §8.2: blur the saliency, normalize,
// upsample to the latent grid, threshold at tau, keep the 8-connected blob at
// the peak, fill holes, open and dilate with 3×3 squares, clip to the
// single-object box grown by max(2, 10%), and fall back to the box itself when
// the mask is empty or smaller than 5% of the box.
func extractMask(a grid, soBox Box, h, w int, sigma, tau float64) grid {
	box := soBox.mask(h, w)
	fallback := grid{h, w, box}
	s := gaussianBlur(a, sigma)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range s.v {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi-lo < 1e-12 {
		return fallback
	}
	for i := range s.v {
		s.v[i] = (s.v[i] - lo) / (hi - lo)
	}
	up := bilinear(s, h, w)
	peak := 0
	m := newGrid(h, w)
	for i, v := range up.v {
		if v > up.v[peak] {
			peak = i
		}
		if v > tau {
			m.v[i] = 1
		}
	}
	m = component(m, peak)
	m = fillHoles(m)
	m = dilate(dilate(erode(m)))
	xa, ya, xb, yb := soBox.raster(h, w)
	gx, gy := max(2, int(math.RoundToEven(0.1*float64(xb-xa)))), max(2, int(math.RoundToEven(0.1*float64(yb-ya))))
	area := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if x < xa-gx || x >= xb+gx || y < ya-gy || y >= yb+gy {
				m.v[y*w+x] = 0
			}
			if m.v[y*w+x] > 0 {
				area++
			}
		}
	}
	if area == 0 || float64(area) < 0.05*float64(count(box)) {
		return fallback
	}
	return m
}

// component keeps the 8-connected component of m that contains cell seed.
func component(m grid, seed int) grid {
	out := newGrid(m.h, m.w)
	if m.v[seed] == 0 {
		return out
	}
	stack := []int{seed}
	out.v[seed] = 1
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		y, x := i/m.w, i%m.w
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				ny, nx := y+dy, x+dx
				if ny < 0 || ny >= m.h || nx < 0 || nx >= m.w {
					continue
				}
				if j := ny*m.w + nx; m.v[j] > 0 && out.v[j] == 0 {
					out.v[j] = 1
					stack = append(stack, j)
				}
			}
		}
	}
	return out
}

// fillHoles makes foreground every background cell not 4-connected to the border.
func fillHoles(m grid) grid {
	outside := newGrid(m.h, m.w)
	var stack []int
	push := func(y, x int) {
		if j := y*m.w + x; m.v[j] == 0 && outside.v[j] == 0 {
			outside.v[j] = 1
			stack = append(stack, j)
		}
	}
	for x := 0; x < m.w; x++ {
		push(0, x)
		push(m.h-1, x)
	}
	for y := 0; y < m.h; y++ {
		push(y, 0)
		push(y, m.w-1)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		y, x := i/m.w, i%m.w
		for _, d := range [][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
			if ny, nx := y+d[0], x+d[1]; ny >= 0 && ny < m.h && nx >= 0 && nx < m.w {
				push(ny, nx)
			}
		}
	}
	out := newGrid(m.h, m.w)
	for i := range out.v {
		out.v[i] = 1 - outside.v[i]
	}
	return out
}

// The structuring elements: the 3×3 square (§8.2's opening and dilation) and
// the 4-connected cross (scipy.ndimage's default, §8.1's box mode).
var (
	square3 = [][2]int{{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 0}, {0, 1}, {1, -1}, {1, 0}, {1, 1}}
	cross3  = [][2]int{{0, 0}, {-1, 0}, {1, 0}, {0, -1}, {0, 1}}
)

// morph applies the structuring element se (offsets dy, dx): erosion keeps
// cells whose whole neighbourhood is set (outside the grid counts as unset,
// scipy's border_value 0), dilation sets cells with any set neighbour.
func morph(m grid, se [][2]int, erodeOp bool) grid {
	out := newGrid(m.h, m.w)
	for y := 0; y < m.h; y++ {
		for x := 0; x < m.w; x++ {
			all, any := true, false
			for _, d := range se {
				ny, nx := y+d[0], x+d[1]
				set := ny >= 0 && ny < m.h && nx >= 0 && nx < m.w && m.v[ny*m.w+nx] > 0
				all, any = all && set, any || set
			}
			if (erodeOp && all) || (!erodeOp && any) {
				out.v[y*m.w+x] = 1
			}
		}
	}
	return out
}

func erode(m grid) grid       { return morph(m, square3, true) }
func dilate(m grid) grid      { return morph(m, square3, false) }
func erodeCross(m grid) grid  { return morph(m, cross3, true) }
func dilateCross(m grid) grid { return morph(m, cross3, false) }
