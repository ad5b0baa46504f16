//go:build cuda

package cuda

import (
	"fmt"
	"math/bits"

	"github.com/rfnet/rfnet-native/tensor"
)

// topkSharedCols is the longest row topk_mean sorts in shared memory (4096
// values and positions: 32 KiB). Longer rows (attention maps above 64×64)
// go to topk_mean_global, the same sort in a scratch buffer in device memory.
const topkSharedCols = 4096

// TopKMean returns the mean of the K largest masked entries of each row, and their positions.
func (g *Backend) TopKMean(x, mask tensor.Buffer, p tensor.TopKParams) (y, idx tensor.Buffer) {
	xd, md := dev("masked_topk_mean", x), devOrNil("masked_topk_mean", mask)
	d := same("masked_topk_mean", xd, md)
	need("masked_topk_mean", xd, p.Rows*p.Cols)
	maskRows := max(p.MaskRows, 1)
	if md != nil {
		need("masked_topk_mean", md, maskRows*p.Cols)
	}
	if p.K < 1 || p.K > p.Cols {
		panic(fmt.Sprintf("cuda: masked_topk_mean: k = %d of %d columns", p.K, p.Cols))
	}
	out, pos := g.newBuffer(d, p.Rows), g.newBuffer(tensor.Int32, p.Rows*p.K)
	what := fmt.Sprintf("masked_topk_mean k=%d of [%d, %d]", p.K, p.Rows, p.Cols)
	if p.Cols > 1<<30 {
		// The kernels index a row's sort with int: pow2 must fit.
		g.fail(fmt.Errorf("cuda: %s: rows longer than 2^30: %w", what, tensor.ErrUnsupported))
		return out, pos
	}
	pow2 := 1 << bits.Len(uint(p.Cols-1))
	rank := func(a *args) *args {
		return a.ptr(out.ptr).ptr(pos.ptr).ptr(xd.ptr).ptr(ptrOf(md)).i64(int64(p.Cols)).i32(int32(p.K)).i32(int32(maskRows)).i32(int32(pow2))
	}
	if pow2 <= topkSharedCols {
		g.run("topk_mean"+suffix(d), launch{grid: [3]int{p.Rows, 1, 1}, block: 256, shared: pow2 * 8}, rank(new(args)), what)
		return out, pos
	}
	// A row's whole sort runs in its one block, so the block is as large as
	// a block can be: each step's pow2/2 compare-exchanges over 1024 threads.
	scratch := g.newBuffer(tensor.Float32, 2*p.Rows*pow2) // per row pow2 values, then pow2 int32 positions
	g.run("topk_mean_global"+suffix(d), launch{grid: [3]int{p.Rows, 1, 1}, block: 1024}, rank(new(args).ptr(scratch.ptr)), what)
	g.Free(scratch)
	return out, pos
}

// TopKMeanBackward scatters dy[r]·mask/K to the chosen positions of zeros [Rows, Cols].
func (g *Backend) TopKMeanBackward(dy, idx, mask tensor.Buffer, p tensor.TopKParams) tensor.Buffer {
	const op = "masked_topk_mean backward"
	dd, id, md := dev(op, dy), dev(op, idx), devOrNil(op, mask)
	d := same(op, dd, md)
	need(op, dd, p.Rows)
	need(op, id, p.Rows*p.K)
	dx := g.Alloc(d, p.Rows*p.Cols).(*buffer)
	g.run("topk_mean_bwd"+suffix(d), linear(int64(p.Rows*p.K)), new(args).ptr(dx.ptr).ptr(dd.ptr).ptr(id.ptr).ptr(ptrOf(md)).
		i64(int64(p.Rows)).i64(int64(p.Cols)).i32(int32(p.K)).i32(int32(max(p.MaskRows, 1))),
		fmt.Sprintf("%s k=%d of [%d, %d]", op, p.K, p.Rows, p.Cols))
	return dx
}
