package rfnet

import (
	"errors"
	"fmt"
	"math"

	"github.com/rfnet/rfnet-native/sam"
)

// ErrNoSAMBox is §8.1's box mode finding no box: the coarse attention mask
// is empty once eroded (the reference raises there; a run falls back to §8.2
// for that object and says so in its mask method).
var ErrNoSAMBox = errors.New("rfnet: sam mask: box mode: the coarse attention mask is empty after erosion")

// §8.1's constants, as the reference passes them (sam_refine_attn and its
// callers): the blur and the coarse mask's threshold per prompt mode, the
// erode/dilate count of box mode, and the two discouragement thresholds of the
// "largest over confidence" rule (the helper's own default for the IoU is 0.2;
// 0.25 is what is passed).
const (
	samSigmaPoint    = 1.5
	samSigmaBox      = 0.1
	samTauPoint      = 0.25
	samTauBox        = 0.05
	samMinConfidence = 0.85
	samMinCoarseIoU  = 0.25
	samIoUEps        = 1e-6
)

// Mask methods, as run.json's mask_method and SAMChoice.Method name them.
const (
	MaskSAMPoint  = "sam-point"
	MaskSAMBox    = "sam-box"
	MaskAttention = "attention"
)

// SAMInput is what §8.1 cuts a mask from: an object's image, its aggregated
// attention A16 (AttH×AttW, row-major) and the grid the mask is wanted on.
type SAMInput struct {
	Image      sam.RGB
	Attention  []float64
	AttH, AttW int
	// Box prompts SAM with the coarse mask's box instead of its peak's point.
	Box          bool
	MaskH, MaskW int // the latent grid: 64×64 at 512²
}

// SAMChoice is §8.1's result: SAM's candidates on the mask grid and how the
// "largest over confidence" rule chose among them.
type SAMChoice struct {
	Method string // MaskSAMPoint or MaskSAMBox
	// Cell is the attention peak (row, column); Point its cell's top-left
	// corner in image pixels (x, y), the prompt in point mode.
	Cell  [2]int
	Point [2]int
	// Box is the prompt in box mode (x0, y0, x1, y1 in image pixels).
	Box *[4]int
	// Coarse is the thresholded attention (AttH×AttW) the IoUs are taken with.
	Coarse       []bool
	AttH, AttW   int
	Candidates   [][]bool // each MaskH×MaskW
	MaskH, MaskW int
	Index        int
	Scores       []int
	Sizes        []int
	Confidences  []float64
	CoarseIoUs   []float64
	// Segmentation is SAM's raw output (low-resolution and image-size logits).
	Segmentation *sam.Segmentation
}

// Mask is the chosen candidate as a 0/1 grid.
func (c *SAMChoice) Mask() []float64 {
	out := make([]float64, len(c.Candidates[c.Index]))
	for i, v := range c.Candidates[c.Index] {
		if v {
			out[i] = 1
		}
	}
	return out
}

// SAMMask is §8.1 (the reference's sam_refine_attn): smooth the attention,
// threshold its min-max normalization into a coarse mask, prompt SAM with the
// peak cell's top-left corner (or, in box mode, the opened coarse mask's box
// grown by a cell), resize the three candidates to the mask grid and to the
// attention grid, and pick the largest unless its confidence or its IoU with
// the coarse mask is low.
func SAMMask(m *sam.Model, in SAMInput) (*SAMChoice, error) {
	if in.AttH < 1 || in.AttW < 1 || len(in.Attention) != in.AttH*in.AttW {
		return nil, fmt.Errorf("rfnet: sam mask: %d attention values for a %dx%d grid", len(in.Attention), in.AttH, in.AttW)
	}
	if in.MaskH < 1 || in.MaskW < 1 {
		return nil, fmt.Errorf("rfnet: sam mask: mask grid %dx%d", in.MaskH, in.MaskW)
	}
	W, H := in.Image.Width, in.Image.Height
	sigma, tau, method := samSigmaPoint, samTauPoint, MaskSAMPoint
	if in.Box {
		sigma, tau, method = samSigmaBox, samTauBox, MaskSAMBox
	}
	s := gaussianBlur(grid{in.AttH, in.AttW, in.Attention}, sigma)
	coarse := coarseMask(s, tau)
	c := &SAMChoice{Method: method, AttH: in.AttH, AttW: in.AttW, MaskH: in.MaskH, MaskW: in.MaskW}
	peak := 0
	for i, v := range s.v {
		if v > s.v[peak] {
			peak = i
		}
	}
	r, col := peak/in.AttW, peak%in.AttW
	c.Cell, c.Point = [2]int{r, col}, [2]int{col * W / in.AttW, r * H / in.AttH}
	var p sam.ImagePrompt
	if in.Box {
		coarse = dilateCross(erodeCross(coarse))
		b, ok := cellBox(coarse)
		if !ok {
			return nil, ErrNoSAMBox
		}
		box := [4]int{b[0] * W / in.AttW, b[1] * H / in.AttH, b[2] * W / in.AttW, b[3] * H / in.AttH}
		c.Box = &box
		p.Box = &[4]float64{float64(box[0]), float64(box[1]), float64(box[2]), float64(box[3])}
	} else {
		p.Points, p.Labels = [][2]float64{{float64(c.Point[0]), float64(c.Point[1])}}, []int{sam.Foreground}
	}
	for _, v := range coarse.v {
		c.Coarse = append(c.Coarse, v > 0)
	}
	seg, err := m.Segment(in.Image, p, true)
	if err != nil {
		return nil, fmt.Errorf("rfnet: sam mask: %w", err)
	}
	c.Segmentation = seg
	k := len(seg.IoU)
	bin := make([]float32, len(seg.Masks))
	for i, v := range seg.Masks {
		if v > 0 {
			bin[i] = 1
		}
	}
	onGrid := sam.Bilinear(bin, k, H, W, in.MaskH, in.MaskW)
	small := make([]float32, len(onGrid))
	for i, v := range onGrid {
		if v != 0 {
			small[i] = 1
		}
	}
	onAtt := sam.Bilinear(small, k, in.MaskH, in.MaskW, in.AttH, in.AttW)
	n, na := in.MaskH*in.MaskW, in.AttH*in.AttW
	for j := 0; j < k; j++ {
		cand := make([]bool, n)
		size := 0
		for i := range cand {
			if cand[i] = small[j*n+i] != 0; cand[i] {
				size++
			}
		}
		inter, union := 0, 0
		for i := 0; i < na; i++ {
			a, b := c.Coarse[i], onAtt[j*na+i] != 0
			if a && b {
				inter++
			}
			if a || b {
				union++
			}
		}
		c.Candidates = append(c.Candidates, cand)
		c.Sizes = append(c.Sizes, size)
		c.Confidences = append(c.Confidences, float64(seg.IoU[j]))
		c.CoarseIoUs = append(c.CoarseIoUs, float64(inter)/(float64(union)+samIoUEps))
	}
	c.Scores, c.Index = largestOverConfidence(c.Sizes, c.Confidences, c.CoarseIoUs)
	return c, nil
}

// coarseMask is the reference's preprocess_mask before any erosion: the
// min-max normalized map above tau. A flat map (0/0 there) has no cell above.
func coarseMask(s grid, tau float64) grid {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range s.v {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	out := newGrid(s.h, s.w)
	for i, v := range s.v {
		if (v-lo)/(hi-lo) > tau {
			out.v[i] = 1
		}
	}
	return out
}

// largestOverConfidence is the reference's select_mask rule: score = size −
// Smax·[confidence < 0.85] − Smax·[coarse IoU < 0.25], the first best wins.
func largestOverConfidence(sizes []int, conf, ious []float64) ([]int, int) {
	smax := 0
	for _, s := range sizes {
		smax = max(smax, s)
	}
	scores := make([]int, len(sizes))
	best := 0
	for i, s := range sizes {
		scores[i] = s
		if conf[i] < samMinConfidence {
			scores[i] -= smax
		}
		if ious[i] < samMinCoarseIoU {
			scores[i] -= smax
		}
		if scores[i] > scores[best] {
			best = i
		}
	}
	return scores, best
}

// cellBox is the reference's binary_mask_to_box with enlarge_box_by_one: the
// set cells' extent, the low sides moved out by a cell and the high ones to
// the last set cell + 1, clamped to the grid (x0, y0, x1, y1 in cells).
func cellBox(m grid) ([4]int, bool) {
	x0, y0, x1, y1 := m.w, m.h, -1, -1
	for i, v := range m.v {
		if v > 0 {
			y, x := i/m.w, i%m.w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
		}
	}
	if x1 < 0 {
		return [4]int{}, false
	}
	return [4]int{max(x0-1, 0), max(y0-1, 0), min(x1+1, m.w), min(y1+1, m.h)}, true
}
