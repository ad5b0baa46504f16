package sam

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// The fixtures under testdata/sam come from testdata/gen/make_sam.py (the original
// segment-anything code with transformers' two differences; see its header):
//
//	PYTHONPATH=/work/refsrc/segment-anything:$PYTHONPATH /usr/bin/python3 testdata/gen/make_sam.py --out testdata/sam

// parityTol bounds the relative L2 error of embeddings, logits and IoU. Issue 24
// asks for 1e-4; the errors are about 5e-7 (the reference runs in float32), and
// 1e-5 still catches the original code's eps (1e-5) in the two-way blocks'
// norms, which moves the logits by about 9e-5.
const parityTol = 1e-5

type samCase struct {
	Name   string       `json:"name"`
	Image  string       `json:"image"`
	Points [][2]float64 `json:"points"`
	Labels []int        `json:"labels"`
}

func readCases(t testing.TB) []samCase {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("sam", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []samCase
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// reference returns a loader of parity.safetensors' tensors for one case, as float64 CPU tensors.
func reference(t testing.TB, name string) func(string) *tensor.Tensor {
	t.Helper()
	f, err := weights.Open(fixtures.Path("sam", "parity.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func(n string) *tensor.Tensor {
		x, err := f.Load(cpu.New(), name+"/"+n, tensor.Float64)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

func loadTiny(t testing.TB, d tensor.DType) *Model {
	t.Helper()
	m, err := Load(fixtures.Path("sam", "tiny-sam"), cpu.New(), d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertRelL2(t *testing.T, what string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if !got.Shape().Equal(want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	if e := fixtures.RelL2(got, want); e > tol {
		t.Errorf("%s: relative L2 error %.3g > %.0e", what, e, tol)
	} else {
		t.Logf("%s: relative L2 error %.3g", what, e)
	}
}

// The encoder and decoder match the reference from the reference's own pixel
// values and scaled points (pre- and post-processing are checked separately).
func TestTinyModelMatchesReference(t *testing.T) {
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
		m := loadTiny(t, d)
		for _, c := range readCases(t) {
			t.Run(c.Name+"/"+d.String(), func(t *testing.T) {
				ref := reference(t, c.Name)
				s := m.Config.Vision.ImageSize
				pixels := ref("pixel_values").To(d).Reshape(1, 3, s, s)
				emb := m.EmbedImage(pixels)
				assertRelL2(t, "image embeddings", emb.Reshape(emb.Shape()[1:]...), ref("image_embeddings"), parityTol)

				pts := ref("points").Float64s()
				p := Prompt{Labels: c.Labels}
				for i := range c.Labels {
					p.Points = append(p.Points, [2]float64{pts[2*i], pts[2*i+1]})
				}
				low, iou, err := m.Predict(emb, p, true)
				if err != nil {
					t.Fatal(err)
				}
				assertRelL2(t, "low-res logits", low.Reshape(low.Shape()[1:]...), ref("low_res_logits"), parityTol)
				assertRelL2(t, "iou", iou.Reshape(iou.Dim(1)), ref("iou"), parityTol)
			})
		}
	}
}
