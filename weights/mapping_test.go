package weights

import (
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/tensor"
)

// A transposed reference serves element (i, j) of the stored [R, C] matrix at
// (j, i), in every stored dtype; a tensor that is not a matrix keeps its shape.
func TestAddTransposed(t *testing.T) {
	b := cpu.New()
	p := tensor.FromFloat64(b, tensor.Float32, tensor.Shape{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	v := tensor.FromFloat64(b, tensor.Float32, tensor.Shape{3}, []float64{1, 2, 3})
	path := filepath.Join(t.TempDir(), "p.safetensors")
	if err := Save(path, []Entry{{"p16", p, tensor.Float16}, {"p32", p, tensor.Float32}, {"p64", p.To(tensor.Float64), tensor.Float64},
		{"v", v, tensor.Float32}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := NewMapping()
	for _, n := range []string{"p16", "p32", "p64", "v"} {
		m.AddTransposed(n, f, n)
	}
	src := NewSource("test", m, b, tensor.Float64)
	for _, n := range []string{"p16", "p32", "p64"} {
		got := src.Tensor(n, 3, 2).Float64s()
		want := []float64{1, 4, 2, 5, 3, 6}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: transpose %v, want %v", n, got, want)
			}
		}
	}
	if got := src.Tensor("v", 3).Float64s(); got[2] != 3 {
		t.Fatalf("vector: %v", got)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
}
