package tensor

// Meta is a backend whose buffers have a dtype and a length but no elements,
// like PyTorch's meta device. Building a model on it checks every weight's name
// and shape without reading or allocating the weights (rfnet-native inspect).
// Any computation on it panics: Backend is left nil on purpose.
type Meta struct{ Backend }

type metaBuf struct {
	d DType
	n int
}

func (b metaBuf) DType() DType { return b.d }
func (b metaBuf) Len() int     { return b.n }

// Name says "meta".
func (Meta) Name() string { return "meta" }

// Computes is true for every dtype: nothing is computed.
func (Meta) Computes(DType) bool { return true }

// Alloc returns an empty buffer of n elements.
func (Meta) Alloc(d DType, n int) Buffer { return metaBuf{d, n} }

// FromRaw returns an empty buffer with the element count of raw.
func (Meta) FromRaw(d, src DType, raw []byte) Buffer { return metaBuf{d, len(raw) / src.Size()} }

// FromFloat64 returns an empty buffer of len(v) elements.
func (Meta) FromFloat64(d DType, v []float64) Buffer { return metaBuf{d, len(v)} }

// FromFloat32 returns an empty buffer of len(v) elements.
func (Meta) FromFloat32(d DType, v []float32) Buffer { return metaBuf{d, len(v)} }

// Free does nothing.
func (Meta) Free(Buffer) {}

// Sync has nothing to wait for.
func (Meta) Sync() error { return nil }

// Concat returns an empty buffer as long as the joined ones: loading stacks
// weights (a self-attention layer's to_q, to_k and to_v into one QKV
// projection), which a model built on Meta does too.
func (Meta) Concat(xs []Buffer, outer int, inners []int) Buffer {
	n := 0
	for _, x := range xs {
		n += x.Len()
	}
	return metaBuf{xs[0].DType(), n}
}
