package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// segmentFlags are segment's flags: Segment Anything on one image, from a
// point or from an attention map (rfnet-algorithm.md §8.1).
type segmentFlags struct {
	model                             modelFlags
	sam, image, point, attention, out string
	selectMask, box, embeddings       bool
}

// selectGrid is the grid §8.1 resizes the candidates to: the latent of a 512² image.
const selectGrid = 64

func setupSegment(fs *pflag.FlagSet) func() error {
	var f segmentFlags
	fs.StringVar(&f.sam, "sam", "", "the SAM model: a transformers SamModel folder (config.json, model.safetensors) or a Hub name (sam-vit-base, org/name[@revision])")
	fs.StringVar(&f.image, "image", "", "the image to segment (PNG, JPEG or GIF)")
	fs.StringVar(&f.point, "point", "", "X,Y: a foreground point in image pixels")
	fs.StringVar(&f.attention, "attention", "", "a .safetensors file whose \"attention\" [16, 16] map prompts SAM as RFNet does (with --select)")
	fs.BoolVar(&f.selectMask, "select", false, "with --attention: choose a candidate by §8.1's rule and write selected.png (64×64) and selected.json")
	fs.BoolVar(&f.box, "box", false, "with --select: prompt with the attention's box instead of its peak (the reference's use_box_input)")
	fs.BoolVar(&f.embeddings, "embeddings", false, "also write the image embeddings to masks.safetensors (\"image_embeddings\")")
	fs.StringVar(&f.out, "out-dir", "", "output folder: masks.safetensors, mask_0.png..mask_2.png (and selected.png, selected.json)")
	f.model.registerDevice(fs)
	fs.BoolVar(&f.model.offline, "offline", false, "never use the network: a Hub name must be in the Hugging Face cache (as HF_HUB_OFFLINE=1)")
	return f.run
}

func (f *segmentFlags) run() error {
	switch {
	case f.sam == "":
		return fmt.Errorf("--sam is required (a SamModel folder or a Hub name such as sam-vit-base)")
	case f.image == "":
		return fmt.Errorf("--image is required")
	case f.out == "":
		return fmt.Errorf("--out-dir is required")
	case (f.point == "") == (f.attention == ""):
		return fmt.Errorf("give one of --point X,Y and --attention A.safetensors")
	case f.attention != "" && !f.selectMask:
		return fmt.Errorf("--attention prompts SAM as §8.1 does and needs --select")
	case f.selectMask && f.attention == "":
		return fmt.Errorf("--select needs --attention")
	case f.box && !f.selectMask:
		return fmt.Errorf("--box needs --select")
	}
	var point [2]float64
	if f.point != "" {
		var err error
		if point, err = parsePoint(f.point); err != nil {
			return err
		}
	}
	var att *tensor.Tensor
	if f.attention != "" {
		var err error
		if att, err = readAttention(f.attention); err != nil {
			return err
		}
	}
	im, err := readImage(f.image)
	if err != nil {
		return err
	}
	img := sam.FromImage(im)
	if f.point != "" && (point[0] < 0 || point[1] < 0 || point[0] >= float64(img.Width) || point[1] >= float64(img.Height)) {
		return fmt.Errorf("--point %s is outside the %dx%d image %s", f.point, img.Width, img.Height, f.image)
	}
	b, d, err := f.model.backend()
	if err != nil {
		return err
	}
	m, err := loadSAM(context.Background(), f.sam, f.model.offline, b, d)
	if err != nil {
		return err
	}
	var seg *sam.Segmentation
	var choice *rfnet.SAMChoice
	if att != nil {
		choice, err = rfnet.SAMMask(m, rfnet.SAMInput{Image: img, Attention: att.Float64s(), AttH: att.Dim(0), AttW: att.Dim(1),
			Box: f.box, MaskH: selectGrid, MaskW: selectGrid})
		if err != nil {
			return err
		}
		seg = choice.Segmentation
	} else if seg, err = m.Segment(img, sam.ImagePrompt{Points: [][2]float64{point}, Labels: []int{sam.Foreground}}, true); err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	if err := writeSegmentation(f.out, seg, choice, f.embeddings); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "rfnet-native: segmented %s into %s (IoU %v)\n", f.image, f.out, seg.IoU)
	return nil
}

// parsePoint reads --point X,Y.
func parsePoint(s string) ([2]float64, error) {
	xs, ys, ok := strings.Cut(s, ",")
	x, errX := strconv.ParseFloat(strings.TrimSpace(xs), 64)
	y, errY := strconv.ParseFloat(strings.TrimSpace(ys), 64)
	if !ok || errX != nil || errY != nil {
		return [2]float64{}, fmt.Errorf("--point %q: want X,Y in image pixels, such as 120,80", s)
	}
	return [2]float64{x, y}, nil
}

// readAttention reads the "attention" map [h, w] of --attention.
func readAttention(path string) (*tensor.Tensor, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--attention: %w", err)
	}
	defer f.Close()
	info, ok := f.Info("attention")
	if !ok {
		return nil, fmt.Errorf("--attention %s has no tensor \"attention\" (it has %s)", path, strings.Join(f.Names(), ", "))
	}
	if len(info.Shape) != 2 || info.Shape[0] < 1 || info.Shape[1] < 1 {
		return nil, fmt.Errorf("--attention %s: \"attention\" has shape %v, want [16 16] (an attention map [h w])", path, info.Shape)
	}
	t, err := f.Load(cpu.New(), "attention", tensor.Float64)
	if err != nil {
		return nil, fmt.Errorf("--attention: %w", err)
	}
	return t, nil
}

// writeSegmentation writes segment's files into dir, each atomically, the
// safetensors first and selected.json (when there is a choice) last.
func writeSegmentation(dir string, seg *sam.Segmentation, choice *rfnet.SAMChoice, embeddings bool) error {
	k := len(seg.IoU)
	b := seg.LowRes.Backend()
	entries := []weights.Entry{
		{Name: "low_res_logits", Tensor: seg.LowRes, DType: tensor.Float32},
		{Name: "masks", Tensor: tensor.FromFloat32(b, tensor.Float32, tensor.Shape{k, seg.Height, seg.Width}, seg.Masks), DType: tensor.Float32},
		{Name: "iou", Tensor: tensor.FromFloat32(b, tensor.Float32, tensor.Shape{k}, seg.IoU), DType: tensor.Float32},
	}
	if embeddings {
		e := seg.Embeddings
		entries = append(entries, weights.Entry{Name: "image_embeddings", Tensor: e.Reshape(e.Shape()[1:]...), DType: tensor.Float32})
	}
	if err := weights.Save(filepath.Join(dir, "masks.safetensors"), entries, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	var pending []*atomicfile.Pending
	add := func(name string, im image.Image) error {
		p, err := pipeline.PreparePNG(filepath.Join(dir, name), im, nil)
		if err == nil {
			pending = append(pending, p)
		}
		return err
	}
	n := seg.Height * seg.Width
	for j := 0; j < k; j++ {
		mask := make([]bool, n)
		for i := range mask {
			mask[i] = seg.Masks[j*n+i] > 0
		}
		if err := add(fmt.Sprintf("mask_%d.png", j), maskImage(mask, seg.Width, seg.Height)); err != nil {
			atomicfile.AbortAll(pending)
			return fmt.Errorf("--out-dir: %w", err)
		}
	}
	if choice != nil {
		if err := add("selected.png", maskImage(choice.Candidates[choice.Index], choice.MaskW, choice.MaskH)); err != nil {
			atomicfile.AbortAll(pending)
			return fmt.Errorf("--out-dir: %w", err)
		}
		raw, _ := json.MarshalIndent(choice.Info(), "", "  ")
		p, err := atomicfile.PrepareBytes(filepath.Join(dir, "selected.json"), append(raw, '\n'))
		if err != nil {
			atomicfile.AbortAll(pending)
			return fmt.Errorf("--out-dir: %w", err)
		}
		pending = append(pending, p)
	}
	if err := atomicfile.CommitAll(pending); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	return nil
}

// maskImage is a mask as a grey PNG: white inside.
func maskImage(m []bool, w, h int) *image.Gray {
	im := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range m {
		if v {
			im.Pix[i] = 255
		}
	}
	return im
}
