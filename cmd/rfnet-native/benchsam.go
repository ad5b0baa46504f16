package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/sam"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// randomSAM builds sam-vit-base from random half-precision weights with its
// released names and shapes, generated in memory.
func randomSAM(b tensor.Backend, d tensor.DType) (*sam.Model, error) {
	man, err := randckpt.ReadShapes("sam-vit-base", "F16")
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "building random sam-vit-base weights in memory")
	raw, err := randckpt.Bytes(man, 1)
	if err != nil {
		return nil, err
	}
	f, err := weights.FromBytes("random sam-vit-base", raw)
	if err != nil {
		return nil, err
	}
	mw, err := sam.MapWeights(f)
	if err != nil {
		return nil, err
	}
	src := weights.NewSource("sam", mw, b, d)
	m := sam.Build(src, sam.ViTBase())
	return m, src.Err()
}

// samStages are SAM's calls as RFNet makes them per object: the image
// encoder on one image of the encoder's input size (1024² for sam-vit-base),
// the prompt encoder and mask decoder on one foreground point with three
// candidate masks, and the whole of it (Segment: preprocessing, encoder,
// decoder, post-processing to the image's size).
func samStages(m *sam.Model, iters int) ([]benchStage, error) {
	b, d := m.Prompt.PositionalEmbedding.Backend(), m.Prompt.PositionalEmbedding.DType()
	side := m.Config.Vision.ImageSize
	img := sam.RGB{Width: side, Height: side, Pix: make([]uint8, 3*side*side)}
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7 % 251) // a texture, not one flat colour
	}
	proc, err := sam.Preprocess(img, side)
	if err != nil {
		return nil, err
	}
	pixels := proc.Tensor(b, d)
	center := [2]float64{float64(side) / 2, float64(side) / 2}
	pt, err := proc.ScalePoint(center[0], center[1])
	if err != nil {
		return nil, err
	}
	prompt := sam.Prompt{Points: [][2]float64{pt}, Labels: []int{sam.Foreground}}
	var emb *tensor.Tensor
	embed := func() error { emb = m.EmbedImage(pixels); return nil }
	embed() // emb for the decoder
	return []benchStage{
		{name: fmt.Sprintf("sam image encoder (1 image, %d²)", side), runs: iters, profile: true, f: embed},
		{name: "sam prompt+decoder (1 point, multimask)", runs: iters, profile: true, f: func() error {
			_, _, err := m.Predict(emb, prompt, true)
			return err
		}},
		{name: "sam per object (preprocess, encoder, decoder, post-processing)", runs: iters, profile: true, f: func() error {
			_, err := m.Segment(img, sam.ImagePrompt{Points: [][2]float64{center}, Labels: []int{sam.Foreground}}, true)
			return err
		}},
	}, nil
}

// benchSAM times SAM's calls (random sam-vit-base, or --weights) into r.
func benchSAM(r *engineReport, m *modelFlags, e engineBench) error {
	var mdl *sam.Model
	var err error
	r.Model = "sam-vit-base"
	if m.weights == "" {
		if mdl, err = randomSAM(e.counter, e.dtype); err != nil {
			return err
		}
		r.Weights = "random sam-vit-base (in memory)"
	} else {
		dir, err := resolveSAM(context.Background(), m.weights, m.offline)
		if err != nil {
			return fmt.Errorf("--weights: %w", err)
		}
		if mdl, err = sam.Load(dir, e.counter, e.dtype); err != nil {
			return fmt.Errorf("--weights %s: %w", m.weights, err)
		}
		r.Weights, r.Model = dir, "sam"
	}
	if err := e.loaded(r); err != nil {
		return err
	}
	stages, err := samStages(mdl, e.iters)
	if err != nil {
		return err
	}
	r.Timings, err = timeStages(e.dev, e.counter, e.prof, stages)
	return err
}
