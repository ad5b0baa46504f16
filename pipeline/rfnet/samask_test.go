package rfnet

import (
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"reflect"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
)

// samSelectCase is one case of testdata/sam/select.json, made by
// testdata/gen/make_sam_select.py (the reference's sam_refine_attn on the tiny SAM):
//
//	PYTHONPATH=/work/refsrc/segment-anything:testdata/gen:$PYTHONPATH /usr/bin/python3 testdata/gen/make_sam_select.py --out testdata/sam
type samSelectCase struct {
	Name      string      `json:"name"`
	Image     string      `json:"image"`
	Box       bool        `json:"box"`
	IoUShift  []float64   `json:"iou_shift"`
	Attention [][]float64 `json:"attention"`
	Want      struct {
		Cell        [2]int     `json:"cell"`
		Point       [2]int     `json:"point"`
		Box         *[4]int    `json:"box"`
		Coarse      []string   `json:"coarse"`
		Candidates  [][]string `json:"candidates"`
		Sizes       []int      `json:"sizes"`
		Confidences []float64  `json:"confidences"`
		CoarseIoUs  []float64  `json:"coarse_ious"`
		Scores      []int      `json:"scores"`
		Index       int        `json:"index"`
	} `json:"want"`
}

// loadTinySAM loads testdata/sam/tiny-sam in float64, its IoU head's output
// bias moved by shift when given (the fixture's way to reach the 0.85 threshold).
func loadTinySAM(t *testing.T, shift []float64) *sam.Model {
	t.Helper()
	m, err := sam.Load(fixtures.Path("sam", "tiny-sam"), cpu.New(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if shift != nil {
		l := m.Decoder.IoUPredictionHead.ProjOut
		b := l.Bias.Float64s()
		for i := range b {
			b[i] += shift[i]
		}
		l.Bias = tensor.FromFloat64(l.Bias.Backend(), l.Bias.DType(), l.Bias.Shape(), b)
	}
	return m
}

func readSAMImage(t *testing.T, name string) sam.RGB {
	t.Helper()
	f, err := os.Open(fixtures.Path("sam", "images", name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return sam.FromImage(im)
}

func bitRows(m []bool, w int) []string {
	var rows []string
	for y := 0; y*w < len(m); y++ {
		r := make([]byte, w)
		for x := range r {
			r[x] = '0'
			if m[y*w+x] {
				r[x] = '1'
			}
		}
		rows = append(rows, string(r))
	}
	return rows
}

// SAMMask makes the reference's choice: the same point, cell, box, coarse
// mask, candidates, sizes and scores, the confidences and IoUs within 1e-4.
func TestSAMMaskMatchesReference(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path("sam", "select.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []samSelectCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	plain := loadTinySAM(t, nil)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m := plain
			if c.IoUShift != nil {
				m = loadTinySAM(t, c.IoUShift)
			}
			in := SAMInput{Image: readSAMImage(t, c.Image), AttH: len(c.Attention), AttW: len(c.Attention[0]), Box: c.Box, MaskH: 64, MaskW: 64}
			for _, row := range c.Attention {
				in.Attention = append(in.Attention, row...)
			}
			got, err := SAMMask(m, in)
			if err != nil {
				t.Fatal(err)
			}
			w := c.Want
			if got.Cell != w.Cell || got.Point != w.Point {
				t.Errorf("cell %v point %v, want %v %v", got.Cell, got.Point, w.Cell, w.Point)
			}
			if !reflect.DeepEqual(got.Box, w.Box) {
				t.Errorf("box %v, want %v", got.Box, w.Box)
			}
			if r := bitRows(got.Coarse, got.AttW); !reflect.DeepEqual(r, w.Coarse) {
				t.Errorf("coarse mask\n%v\nwant\n%v", r, w.Coarse)
			}
			for i, cand := range got.Candidates {
				if r := bitRows(cand, got.MaskW); !reflect.DeepEqual(r, w.Candidates[i]) {
					t.Errorf("candidate %d differs from the reference's", i)
				}
			}
			if !reflect.DeepEqual(got.Sizes, w.Sizes) || !reflect.DeepEqual(got.Scores, w.Scores) || got.Index != w.Index {
				t.Errorf("sizes %v scores %v index %d, want %v %v %d", got.Sizes, got.Scores, got.Index, w.Sizes, w.Scores, w.Index)
			}
			for i := range w.Confidences {
				if math.Abs(got.Confidences[i]-w.Confidences[i]) > 1e-4 || math.Abs(got.CoarseIoUs[i]-w.CoarseIoUs[i]) > 1e-4 {
					t.Errorf("candidate %d: confidence %.6f IoU %.6f, want %.6f %.6f", i, got.Confidences[i], got.CoarseIoUs[i], w.Confidences[i], w.CoarseIoUs[i])
				}
			}
		})
	}
}

func TestLargestOverConfidence(t *testing.T) {
	for _, c := range []struct {
		name       string
		sizes      []int
		conf, ious []float64
		want       int
	}{
		{"largest", []int{10, 30, 20}, []float64{0.9, 0.9, 0.9}, []float64{0.5, 0.5, 0.5}, 1},
		{"low confidence", []int{10, 30, 20}, []float64{0.9, 0.8, 0.9}, []float64{0.5, 0.5, 0.5}, 2},
		{"low IoU", []int{10, 30, 20}, []float64{0.9, 0.9, 0.9}, []float64{0.5, 0.5, 0.1}, 1},
		{"all penalized", []int{10, 30, 20}, []float64{0.1, 0.1, 0.1}, []float64{0.1, 0.1, 0.1}, 1},
		{"tie: the first", []int{30, 30, 20}, []float64{0.9, 0.9, 0.9}, []float64{0.5, 0.5, 0.5}, 0},
	} {
		if _, got := largestOverConfidence(c.sizes, c.conf, c.ious); got != c.want {
			t.Errorf("%s: index %d, want %d", c.name, got, c.want)
		}
	}
}

// An attention map whose opened coarse mask is empty (one isolated cell) has
// no box to prompt with: an error, not a panic.
func TestSAMMaskEmptyBox(t *testing.T) {
	a := make([]float64, 256)
	a[5*16+5] = 1
	_, err := SAMMask(loadTinySAM(t, nil), SAMInput{Image: readSAMImage(t, "square"), Attention: a, AttH: 16, AttW: 16, Box: true, MaskH: 64, MaskW: 64})
	if !errors.Is(err, ErrNoSAMBox) {
		t.Fatalf("got %v, want ErrNoSAMBox (the run falls back on it, and on it alone)", err)
	}
	t.Log(err)
}
