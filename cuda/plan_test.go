package cuda

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// offsets maps every output element to an input offset by a (shape, strides) plan,
// as the kernels do: the last axis varies fastest.
func offsets(shape, strides []int) []int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	out := make([]int, n)
	for i := range out {
		rem, off := i, 0
		for ax := len(shape) - 1; ax >= 0; ax-- {
			off += (rem % shape[ax]) * strides[ax]
			rem /= shape[ax]
		}
		out[i] = off
	}
	return out
}

func randomShape(r *rand.Rand) tensor.Shape {
	s := make(tensor.Shape, 1+r.IntN(7))
	for i := range s {
		s[i] = 1 + r.IntN(4)
	}
	return s
}

// The merged plans address exactly the elements the unmerged ones do, in order.
func TestPermutePlanKeepsOffsets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		shape := randomShape(r)
		perm := r.Perm(len(shape))
		stride := make([]int, len(shape))
		for i, s := len(shape)-1, 1; i >= 0; i-- {
			stride[i] = s
			s *= shape[i]
		}
		full, fullStride := make([]int, len(perm)), make([]int, len(perm))
		for i, a := range perm {
			full[i], fullStride[i] = shape[a], stride[a]
		}
		oshape, istride := permutePlan(shape, perm)
		if !slices.Equal(offsets(oshape, istride), offsets(full, fullStride)) {
			t.Fatalf("permute %v by %v: plan %v %v", shape, perm, oshape, istride)
		}
		if len(perm) >= 2 && perm[0] == 0 && perm[1] == 1 && len(oshape) > len(perm)-1 && shape[0] > 1 && shape[1] > 1 {
			t.Fatalf("permute %v by %v: leading axes in place were not merged: %v", shape, perm, oshape)
		}
	}
}

func TestBroadcastPlanKeepsOffsets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		shape := randomShape(r)
		// Each operand: contiguous over the axes it has, stride 0 over the ones it lacks.
		strides := func() []int {
			s := make([]int, len(shape))
			for i, n := len(shape)-1, 1; i >= 0; i-- {
				if r.IntN(3) > 0 {
					s[i] = n
					n *= shape[i]
				}
			}
			return s
		}
		bc := tensor.Broadcast{Shape: shape, StrideA: strides(), StrideB: strides()}
		s, sa, sb := simplifyBroadcast(bc)
		if !slices.Equal(offsets(s, sa), offsets(shape, bc.StrideA)) || !slices.Equal(offsets(s, sb), offsets(shape, bc.StrideB)) {
			t.Fatalf("broadcast %+v: plan %v %v %v", bc, s, sa, sb)
		}
	}
	// Same shape on both sides collapses to one axis; a bias over channels to three at most.
	if s, _, _ := simplifyBroadcast(tensor.Broadcast{Shape: tensor.Shape{2, 3, 4, 5}, StrideA: []int{60, 20, 5, 1}, StrideB: []int{60, 20, 5, 1}}); len(s) != 1 {
		t.Fatalf("same-shape plan %v", s)
	}
}

// Group norm splits runs only where there are few long ones: SD's batch-2
// UNet at 64², 32² and 16², and the VAE; not at 8², nor for many runs.
func TestGroupSlices(t *testing.T) {
	for _, c := range []struct{ runs, size, want int }{
		{64, 10 * 64 * 64, 16},  // UNet 64², 320 channels: 16 slices of 2560
		{64, 20 * 32 * 32, 10},  // UNet 32², 640 channels: limited by 2K-value slices
		{64, 40 * 8 * 8, 1},     // UNet 8²: short runs stay whole
		{32, 4 * 512 * 512, 32}, // VAE 512², batch 1: 1024 blocks
		{2, 4 * 100 * 100, 19},  // the edge test: 19 slices
		{1, 1 << 30, 128},       // at most 128 slices
		{2048, 1 << 20, 1},      // runs enough to fill the GPU
		{1, 100, 1},             // tiny
	} {
		if got := groupSlices(c.runs, c.size); got != c.want {
			t.Errorf("groupSlices(%d, %d) = %d, want %d", c.runs, c.size, got, c.want)
		}
	}
}

// The index record of binary and permute: rank, a Divisor per axis (unused
// axes of size 1), then each strides array (unused axes 0).
func TestIndexRecord(t *testing.T) {
	rec := indexRecord([]int{4, 320}, []int{320, 1}, []int{1, 0})
	if len(rec) != 8+16*maxRank+2*8*maxRank {
		t.Fatalf("%d bytes", len(rec))
	}
	u64 := func(off int) int64 { return int64(binary.LittleEndian.Uint64(rec[off:])) }
	if binary.LittleEndian.Uint32(rec) != 2 || u64(8) != 4 || u64(24) != 320 || u64(40) != 1 {
		t.Errorf("rank and divisors: %x", rec[:56])
	}
	if v := newDivisor(320).bytes(); string(rec[24:40]) != string(v) {
		t.Errorf("divisor of 320: %x, want %x", rec[24:40], v)
	}
	strides := 8 + 16*maxRank
	if u64(strides) != 320 || u64(strides+8) != 1 || u64(strides+16) != 0 || u64(strides+8*maxRank) != 1 || u64(strides+8*maxRank+8) != 0 {
		t.Errorf("strides: %x", rec[strides:])
	}
}

// The implicit gradient splits K only where its tiles fall short of the
// target grid, into splits of at least 8 slices that cover every slice once.
func TestDgradSplits(t *testing.T) {
	for _, c := range []struct {
		name                  string
		blocks, slices        int
		wantSplits, wantChunk int
	}{
		{"UNet level 0 at batch 1 (320 channels, 64²)", 160, 90, 2, 45},
		{"level 2 (1280 channels, 16²)", 40, 360, 7, 52},
		{"level 3 (1280 channels, 8²)", 20, 360, 14, 26},
		{"batch 2 at level 0: enough tiles", 320, 90, 1, 90},
		{"shallow K: no split of fewer than 8 slices", 4, 12, 1, 12},
		{"a short last split", 1, 26, 3, 9},
	} {
		splits, chunk := dgradSplits(c.blocks, c.slices)
		if splits != c.wantSplits || chunk != c.wantChunk {
			t.Errorf("%s: %d splits of %d, want %d of %d", c.name, splits, chunk, c.wantSplits, c.wantChunk)
		}
		if (splits-1)*chunk >= c.slices || splits*chunk < c.slices {
			t.Errorf("%s: %d splits of %d slices do not cover %d slices each once", c.name, splits, chunk, c.slices)
		}
	}
}
