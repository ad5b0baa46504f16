//go:build cuda

package cuda

import (
	"fmt"
	"math/bits"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// topkMaxCols is the longest row the kernel sorts in shared memory (4096
// values and positions: 32 KiB). Longer rows (attention maps above 64×64)
// are ranked on the host, which gives the same result.
const topkMaxCols = 4096

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
	if p.Cols > topkMaxCols {
		return g.topKMeanHost(xd, md, p)
	}
	pow2 := 1 << bits.Len(uint(p.Cols-1))
	out, pos := g.newBuffer(d, p.Rows), g.newBuffer(tensor.Int32, p.Rows*p.K)
	l := launch{grid: [3]int{p.Rows, 1, 1}, block: 256, shared: pow2 * 8}
	g.run("topk_mean"+suffix(d), l, new(args).ptr(out.ptr).ptr(pos.ptr).ptr(xd.ptr).ptr(ptrOf(md)).i64(int64(p.Cols)).
		i32(int32(p.K)).i32(int32(maskRows)).i32(int32(pow2)), fmt.Sprintf("masked_topk_mean k=%d of [%d, %d]", p.K, p.Rows, p.Cols))
	return out, pos
}

// topKMeanHost ranks on the host with the CPU backend (the kernel's twin:
// stable order, ties to the lower position).
func (g *Backend) topKMeanHost(xd, md *buffer, p tensor.TopKParams) (tensor.Buffer, tensor.Buffer) {
	c := cpu.New()
	x := c.FromFloat32(tensor.Float32, g.Float32s(xd))
	var m tensor.Buffer
	if md != nil {
		m = c.FromFloat32(tensor.Float32, g.Float32s(md))
	}
	y, idx := c.TopKMean(x, m, p)
	return g.FromFloat32(xd.dtype, c.Float32s(y)), g.FromInt32(c.Int32s(idx))
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
