//go:build cuda

package sam

import (
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// The tiny model on the GPU agrees with the CPU's float64 run (image
// embeddings, low-resolution logits, IoU and the post-processed masks) within
// fixtures.GPUModelTol of each dtype, on every case of cases.json.
func TestTinyModelOnGPU(t *testing.T) {
	g := fixtures.GPU(t)
	ref, err := Load(fixtures.Path("sam", "tiny-sam"), cpu.New(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float16, tensor.BFloat16} {
		if !g.Computes(d) {
			continue
		}
		m, err := Load(fixtures.Path("sam", "tiny-sam"), g, d)
		if err != nil {
			t.Fatal(err)
		}
		tol := fixtures.GPUModelTol(d)
		for _, c := range readCases(t) {
			t.Run(c.Name+"/"+d.String(), func(t *testing.T) {
				img := readImage(t, c.Image)
				p := ImagePrompt{Points: c.Points, Labels: c.Labels}
				want, err := ref.Segment(img, p, true)
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.Segment(img, p, true)
				if err != nil {
					t.Fatal(err)
				}
				host := func(v []float32, s ...int) *tensor.Tensor {
					return tensor.FromFloat32(cpu.New(), tensor.Float64, tensor.Shape(s), v)
				}
				assertRelL2(t, "image embeddings", got.Embeddings, want.Embeddings, tol)
				assertRelL2(t, "low-res logits", got.LowRes, want.LowRes, tol)
				k := len(want.IoU)
				assertRelL2(t, "iou", host(got.IoU, k), host(want.IoU, k), tol)
				assertRelL2(t, "masks", host(got.Masks, k, img.Height, img.Width), host(want.Masks, k, img.Height, img.Width), tol)
			})
		}
	}
}
