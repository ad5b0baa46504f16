//go:build cuda

package cuda

import (
	"fmt"
	"slices"

	"github.com/rfnet/rfnet-native/tensor"
)

// Gather returns rows ids[i] of table [rows, dim]. An id out of range is an
// error naming it (the kernel flags it; checking costs one small copy back,
// and Gather runs once per prompt, for the token embeddings).
func (g *Backend) Gather(table, ids tensor.Buffer, dim int) tensor.Buffer {
	td, id := dev("gather", table), dev("gather", ids)
	d := same("gather", td)
	if id.dtype != tensor.Int32 {
		panic(fmt.Sprintf("cuda: gather: ids of dtype %s, want i32", id.dtype))
	}
	rows := td.n / dim
	y := g.newBuffer(d, id.n*dim)
	bad := g.Alloc(tensor.Int32, 1).(*buffer)
	defer g.Free(bad)
	what := fmt.Sprintf("gather %d ids from [%d, %d]", id.n, rows, dim)
	g.run("gather"+suffix(d), linear(int64(id.n*dim)), new(args).ptr(y.ptr).ptr(td.ptr).ptr(id.ptr).i64(int64(id.n)).i64(int64(dim)).i64(int64(rows)).ptr(bad.ptr), what)
	if g.failed() || g.Int32s(bad)[0] == 0 {
		return y
	}
	host := g.Int32s(id)
	i := slices.IndexFunc(host, func(v int32) bool { return v < 0 || int(v) >= rows })
	g.fail(fmt.Errorf("cuda: %s: id %d at position %d is out of range", what, host[max(i, 0)], i))
	return y
}
