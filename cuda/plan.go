package cuda

import (
	"encoding/binary"

	"github.com/rfnet/rfnet-native/tensor"
)

// maxRank is the rank the index-mapping kernels (binary, permute) take.
const maxRank = 6

// Launch plans: the index plans of the kernels that map each output element
// to input offsets (binary, permute), how group norm splits its runs, and
// how the implicit convolution gradient splits K.
// Pure Go, so they are tested without a GPU.

// simplifyBroadcast drops axes of size 1 and merges neighbouring axes that
// both operands traverse contiguously, so most broadcasts need 1-3 axes
// (fewer divisions per element, and any rank fits the kernel's 6).
func simplifyBroadcast(bc tensor.Broadcast) (shape, sa, sb []int) {
	for i, s := range bc.Shape {
		if s == 1 {
			continue
		}
		if k := len(shape) - 1; k >= 0 && sa[k] == bc.StrideA[i]*s && sb[k] == bc.StrideB[i]*s {
			shape[k] *= s
			sa[k], sb[k] = bc.StrideA[i], bc.StrideB[i]
			continue
		}
		shape = append(shape, s)
		sa = append(sa, bc.StrideA[i])
		sb = append(sb, bc.StrideB[i])
	}
	if len(shape) == 0 {
		return []int{1}, []int{0}, []int{0}
	}
	return shape, sa, sb
}

// permutePlan is the output shape and, per output axis, the input stride of
// x of shape `shape` permuted by perm (output axis i is input axis perm[i]).
// Axes of size 1 are dropped and output neighbours that are input neighbours
// in the same order are merged: an attention head split [B, N, H, D] →
// [B, H, N, D] needs 3 axes, a transpose of a matrix 2.
func permutePlan(shape tensor.Shape, perm []int) (oshape, istride []int) {
	stride := make([]int, len(shape))
	for i, s := len(shape)-1, 1; i >= 0; i-- {
		stride[i] = s
		s *= shape[i]
	}
	for _, a := range perm {
		if shape[a] == 1 {
			continue // an axis of size 1 moves nothing
		}
		if k := len(oshape) - 1; k >= 0 && istride[k] == stride[a]*shape[a] {
			oshape[k] *= shape[a]
			istride[k] = stride[a]
			continue
		}
		oshape = append(oshape, shape[a])
		istride = append(istride, stride[a])
	}
	if len(oshape) == 0 {
		return []int{1}, []int{0}
	}
	return oshape, istride
}

// groupSlices is how many blocks stream each (sample, group) run of size
// values: 1 (one block per run, one launch) when there are runs enough to
// fill the GPU or the runs are short, else enough slices of at least
// minSlice values for about targetBlocks blocks in all (two launches:
// per-slice partial statistics, then merge and normalize). One block alone
// keeps too few loads in flight to stream a long run at the memory's speed:
// batch-2 SD has only 64 runs of 40K values at 64², the VAE 32 runs of up
// to 1M values. Split runs are fewer than targetBlocks, well inside the
// grid's y extent (65535) that indexes them.
func groupSlices(runs, size int) int {
	const targetBlocks, minSlice, maxSlices = 1024, 2048, 128
	return max(1, min((targetBlocks+runs-1)/runs, size/minSlice, maxSlices))
}

// indexRecord lays out an index plan as the kernels' structs Broadcast and
// Perm do: int rank (padded to 8 bytes), a Divisor per output axis, then
// each strides array; maxRank entries each, the unused axes of size 1 and
// stride 0.
func indexRecord(shape []int, strides ...[]int) []byte {
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(shape)))
	rec = append(rec, 0, 0, 0, 0)
	for i := range maxRank {
		s := 1
		if i < len(shape) {
			s = shape[i]
		}
		rec = append(rec, newDivisor(s).bytes()...)
	}
	for _, v := range strides {
		for i := range maxRank {
			var s int
			if i < len(v) {
				s = v[i]
			}
			rec = binary.LittleEndian.AppendUint64(rec, uint64(int64(s)))
		}
	}
	return rec
}

// dgradTargetBlocks is the grid the implicit gradient aims for when its
// tiles are fewer: two blocks on each of an H100's 132 SMs (two fit in its
// registers), so that no SM idles while a few do all the work; on a smaller
// card the extra blocks wait in line, at the cost of the partial sums.
const dgradTargetBlocks = 264

// dgradSplits cuts the implicit gradient's slices of K (32 deep each) into
// splits of chunk slices when blocks (its tiles over every sample) fall
// short of dgradTargetBlocks: as many splits as bring the grid there, each
// of at least 8 slices so that the partial sums stay a small share of the
// work. The last split may be shorter; every split has at least one slice.
func dgradSplits(blocks, slices int) (splits, chunk int) {
	const minChunk = 8
	splits = 1
	if blocks < dgradTargetBlocks {
		splits = (dgradTargetBlocks + blocks - 1) / blocks
	}
	splits = max(1, min(splits, slices/minChunk))
	chunk = (slices + splits - 1) / splits
	return (slices + chunk - 1) / chunk, chunk
}
