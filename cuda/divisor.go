package cuda

import (
	"encoding/binary"
	"fmt"
)

// divisor is the host half of kernels/common.cuh's Divisor: d and, for
// d < 2^31, the magic multiplier m and shift s with which the kernels divide
// n < 2^31 by d as (umulhi(n, m) + n) >> s. With s = ⌈log2 d⌉ and
// m = ⌊2^32·(2^s − d)/d⌋ + 1 that is exact for every such n and d (the
// bound PyTorch's IntDivider states for the same constants); TestDivisor
// checks it at the edges and on random pairs.
type divisor struct {
	d    int64
	m, s uint32
}

// newDivisor encodes d ≥ 0. A zero size comes with zero elements, so the
// kernels never divide by it.
func newDivisor(d int) divisor {
	if d < 0 {
		panic(fmt.Sprintf("cuda: divisor %d", d))
	}
	v := divisor{d: int64(d)}
	if d == 0 || d >= 1<<31 {
		return v // quot divides plainly (or never)
	}
	s := uint32(0)
	for 1<<s < d {
		s++
	}
	v.s = s
	v.m = uint32((1<<32)*((uint64(1)<<s)-uint64(d))/uint64(d) + 1)
	return v
}

// quot is n / d as the kernels compute it (n ≥ 0).
func (v divisor) quot(n int64) int64 {
	if n|v.d <= 1<<31-1 {
		hi := uint32((uint64(uint32(n)) * uint64(v.m)) >> 32)
		return int64((hi + uint32(n)) >> v.s)
	}
	return n / v.d
}

// bytes lays v out as struct Divisor { int64_t d; uint32_t m, s; }.
func (v divisor) bytes() []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(v.d))
	b = binary.LittleEndian.AppendUint32(b, v.m)
	return binary.LittleEndian.AppendUint32(b, v.s)
}
