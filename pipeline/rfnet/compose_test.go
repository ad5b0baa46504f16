package rfnet

import (
	"testing"
)

// The quantized shift of §9.1: dx = 0.3105, dy = 0.0840 give (16, 8) at 64×64,
// (4, 2) at 16×16 and (2, 1) at 8×8.
func TestShiftQuantization(t *testing.T) {
	m := newGrid(64, 64)
	m.v[10*64+10] = 1 // a one-cell mask at (10, 10): center 10/64
	cx, cy := 10.0/64+0.3105, 10.0/64+0.0840
	s := alignment(centerOf(m), 64, 64, Box{cx - 0.1, cy - 0.1, cx + 0.1, cy + 0.1}, 8, false)
	for _, c := range []struct{ n, x, y int }{{64, 16, 8}, {16, 4, 2}, {8, 2, 1}} {
		if x, y := s.at(c.n, c.n); x != c.x || y != c.y {
			t.Errorf("at %d: (%d, %d), want (%d, %d)", c.n, x, y, c.x, c.y)
		}
	}
	if s := alignment(centerOf(m), 64, 64, Box{0.5, 0.5, 0.7, 0.7}, 8, true); s.dy != 0 {
		t.Errorf("horizontal_shift_only kept dy = %d", s.dy)
	}
}

func TestShiftedZeroFill(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	out, valid := shifted(v, 3, 3, 1, -1)
	want := []float64{0, 4, 5, 0, 7, 8, 0, 0, 0}
	for i := range want {
		if out[i] != want[i] || (valid[i] == 1) != (i%3 != 0 && i < 6) {
			t.Fatalf("shifted %v valid %v, want %v", out, valid, want)
		}
	}
}

// Composition pastes the largest mask first, so a smaller overlapping object
// ends on top; the frozen region is the union of the masks.
func TestComposeOrder(t *testing.T) {
	const h, w, ch, steps = 4, 4, 1, 1
	mk := func(cells []int, value float64) placed {
		m := newGrid(h, w)
		lat := make([]float64, h*w)
		for _, c := range cells {
			m.v[c] = 1
		}
		for i := range lat {
			lat[i] = value
		}
		valid := make([]float64, h*w)
		for i := range valid {
			valid[i] = 1
		}
		return placed{latents: [][]float64{lat, lat}, mask: m, valid: valid, area: count(m.v)}
	}
	small := mk([]int{5}, 2)
	big := mk([]int{5, 6, 9, 10}, 1)
	bg := make([]float64, h*w)
	c := compose(bg, []placed{small, big}, steps, ch, h, w, false)
	if c.latents[1][5] != 2 || c.latents[1][6] != 1 || c.latents[1][0] != 0 {
		t.Fatalf("step 1: %v", c.latents[1])
	}
	if count(c.frozen) != 4 {
		t.Fatalf("frozen %v", c.frozen)
	}
	// With boxToBg, the first latent takes each object's noise in its mask's box grown by one cell.
	c = compose(bg, []placed{big}, steps, ch, h, w, true)
	if c.latents[0][0] != 1 || c.latents[0][15] != 1 {
		t.Fatalf("box paste %v", c.latents[0])
	}
}

func TestExtractMask(t *testing.T) {
	// A blob of attention in the middle of a 16×16 grid becomes a compact mask
	// on the 64×64 latent grid, clipped to the grown box.
	a := newGrid(16, 16)
	for y := 6; y < 10; y++ {
		for x := 5; x < 11; x++ {
			a.v[y*16+x] = 1
		}
	}
	box := Box{0.25, 0.25, 0.75, 0.75}
	m := extractMask(a, box, 64, 64, 1.5, 0.25)
	if n := count(m.v); n < 200 || n > 64*64/4+400 {
		t.Fatalf("mask area %d", n)
	}
	if m.v[32*64+32] == 0 || m.v[0] != 0 {
		t.Fatal("the mask misses the peak or reaches the corner")
	}
	// A flat map falls back to the box.
	flat := extractMask(newGrid(16, 16), box, 64, 64, 1.5, 0.25)
	if count(flat.v) != 32*32 {
		t.Fatalf("fallback area %d", count(flat.v))
	}
}
