package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/pipeline"
	"github.com/rfnet/rfnet-native/rng"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/unet"
	"github.com/rfnet/rfnet-native/weights"
)

// randomRefiner builds the SDXL refiner 1.0 from random half-precision
// weights in its single-file layout, generated in memory, with tokenizer (a
// tokenizer_2/ folder or vocabulary file; "" for token ids only).
func randomRefiner(o pipeline.LoadOptions) (*pipeline.Refiner, error) {
	man, err := randckpt.ReadSingleFile("sdxl-refiner-single-file")
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "building random sdxl-refiner weights in memory")
	raw, err := randckpt.Bytes(man, 1)
	if err != nil {
		return nil, err
	}
	f, err := weights.FromBytes("random sdxl-refiner", raw)
	if err != nil {
		return nil, err
	}
	o.NoTokenizer = o.Tokenizer == ""
	return pipeline.LoadRefinerFile(f, o)
}

// refinerStages are the refiner's calls in RFNet's refinement pass: its text
// encoder, one UNet call with classifier-free guidance (batch 2) at a latent
// of size², and with steps > 0 the whole img2img pass of an 8·size image at
// the pipeline's defaults (strength 0.3: int(0.3·steps) Euler steps, VAE
// encode and decode included; it needs r's tokenizer).
func refinerStages(r *pipeline.Refiner, size, iters, steps int) []benchStage {
	b, d := r.Backend, r.DType
	tokens := benchTokens(b, r.Variant.Text.VocabSize)
	var emb, pooled *tensor.Tensor
	encode := func() error { emb, pooled = r.Text.EncodeSDXL(tokens); return nil }
	encode() // the conditioning of the UNet call
	ch := r.Variant.UNet.InChannels
	z := tensor.FromFloat32(b, d, tensor.Shape{1, ch, size, size}, rng.NewTorch(1).Randn(ch*size*size))
	z2, pooled2 := tensor.Concat(0, z, z), tensor.Concat(0, pooled, pooled)
	// The step as the refine loop runs it: the keys and values of the text projected once.
	ctx2 := r.UNet.PrepareContext(tensor.Concat(0, emb, emb))
	defer ctx2.Free()
	side := float64(8 * size)
	added := &unet.Added{TextEmbeds: pooled2, TimeIDs: []float64{side, side, 0, 0, pipeline.DefaultNegativeAestheticScore,
		side, side, 0, 0, pipeline.DefaultAestheticScore}}
	stages := []benchStage{
		{name: "refiner text encoder (1×77 tokens)", runs: iters, profile: true, f: encode},
		{name: fmt.Sprintf("refiner unet, batch 2 (CFG step), %d² latent", size), runs: iters, profile: true, f: func() error {
			_, err := r.UNet.ForwardContext(z2, []float64{500, 500}, ctx2, added, nil)
			return err
		}},
	}
	if steps > 0 {
		n := 3 * 8 * size * 8 * size
		gray := make([]float32, n)
		for i := range gray {
			gray[i] = float32(i%97) / 96 // a texture in [0, 1]
		}
		img := tensor.FromFloat32(b, tensor.Float32, tensor.Shape{1, 3, 8 * size, 8 * size}, gray)
		q := pipeline.NewRefineRequest(img, "a photo of a cat in a sunny garden")
		q.Steps = steps
		stages = append(stages, benchStage{name: fmt.Sprintf("refine: %d of %d Euler steps with CFG (strength %g), vae encode+decode",
			int(float64(steps)*q.Strength), steps, q.Strength), runs: 1, f: func() error {
			_, err := r.Refine(q)
			return err
		}})
	}
	return stages
}

// benchRefiner times the SDXL refiner's calls (random weights, or --weights) into r.
func benchRefiner(r *engineReport, m *modelFlags, e engineBench) error {
	split, err := parseTokenizerSplit(m.tokenizerSplit)
	if err != nil {
		return err
	}
	o := pipeline.LoadOptions{Backend: e.counter, DType: e.dtype, Tokenizer: m.tokenizer, ConfigDir: m.config, TokenizerSplit: split}
	var ref *pipeline.Refiner
	if m.weights == "" {
		if e.steps > 0 && m.tokenizer == "" {
			return errors.New("--refiner on random weights needs --tokenizer for the refinement (a tokenizer_2/ folder or bpe_simple_vocab_16e6.txt.gz: prompts are 77 tokens whatever the vocabulary, so any works), or --steps 0 to skip it")
		}
		if ref, err = randomRefiner(o); err != nil {
			return loadFlagError(err)
		}
		r.Weights = "random sdxl-refiner (in memory)"
	} else {
		o.NoTokenizer = e.steps == 0 // only the refinement encodes a prompt
		if ref, err = loadRefiner(context.Background(), refinerFlags{"--weights", "--tokenizer", "--config"}, m.weights, m.offline, o); err != nil {
			return err
		}
		defer ref.Close()
		r.Weights = ref.Path
	}
	r.Model = ref.Variant.Name
	if err := e.loaded(r); err != nil {
		return err
	}
	r.Latent = e.size
	if r.Latent == 0 {
		// A folder's unet/config.json says its sample size; a single file's
		// inferred config does not, so random weights take the released one
		// (128: 1024×1024).
		r.Latent = ref.Variant.UNet.SampleSize
		if m.weights == "" {
			r.Latent = pipeline.SDXLRefiner().UNet.SampleSize
		}
	}
	r.Timings, err = timeStages(e.dev, e.counter, e.prof, refinerStages(ref, r.Latent, e.iters, e.steps))
	return err
}
