package unet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// The tiny refiner-shaped UNet of testdata/gen/make_refiner.py: no attention
// in the first and last blocks, transformer_layers_per_block [1, 2, 3, 2],
// text_time conditioning; one call on a non-square latent, with two batch
// entries of different time ids and a fractional timestep.
const refinerModel = "tiny-sdxl-refiner"

func TestRefinerUNetMatchesReference(t *testing.T) {
	want := fixtures.Tensors(t, refinerModel+"-components")
	for _, single := range []bool{false, true} {
		for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
			u := loadTiny(t, refinerModel, single, d)
			added := &Added{TextEmbeds: want("text_embeds").To(d), TimeIDs: want("time_ids").Float64s()}
			got, err := u.ForwardAdded(want("sample").To(d), want("timesteps").Float64s(), want("context").To(d), added, nil)
			if err != nil {
				t.Fatal(err)
			}
			// About 3e-5: the reference embeds the time ids (up to 1024) in
			// float32 with torch's exp, which is off by an ulp for some
			// frequencies, so some angles differ by ~6e-5.
			e := fixtures.RelL2(got, want("unet_out"))
			if !(e < 1e-4) {
				t.Errorf("single=%v %s: relative L2 error %.3g", single, d, e)
			}
			t.Logf("single=%v %s: relative L2 error %.3g", single, d, e)
		}
	}
}

// Each transformer block of a deeper attention block is a layer of its own,
// named by its index, and CrossAttentionLayers lists what the hook sees.
func TestRefinerCrossAttentionLayers(t *testing.T) {
	u := loadTiny(t, refinerModel, false, tensor.Float64)
	want := fixtures.Tensors(t, refinerModel+"-components")
	var seen []string
	added := &Added{TextEmbeds: want("text_embeds"), TimeIDs: want("time_ids").Float64s()}
	_, err := u.ForwardAdded(want("sample"), want("timesteps").Float64s(), want("context"), added, func(l Layer, p *tensor.Tensor) bool {
		seen = append(seen, l.Key)
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range u.CrossAttentionLayers(8, 6) {
		listed = append(listed, l.Key)
	}
	// down 1: 2 attentions × 2 blocks; down 2: 2 × 3; mid: 2; up 1: 3 × 3; up 2: 3 × 2.
	if len(seen) != 4+6+2+9+6 || strings.Join(seen, " ") != strings.Join(listed, " ") {
		t.Fatalf("hook saw %v\nlisted %v", seen, listed)
	}
	if seen[0] != "down.1.0.0" || seen[1] != "down.1.0.1" || seen[10] != "mid.0.0.0" || seen[12] != "up.1.0.0" {
		t.Fatalf("layers %v", seen)
	}
}

// The text_time conditioning is required by a UNet that has it and refused by
// one that has not, with errors that say what is wrong.
func TestAddedConditioningIsChecked(t *testing.T) {
	want := fixtures.Tensors(t, refinerModel+"-components")
	refiner := loadTiny(t, refinerModel, false, tensor.Float64)
	sample, ts, ctx := want("sample"), want("timesteps").Float64s(), want("context")
	if _, err := refiner.Forward(sample, ts, ctx, nil); err == nil || !strings.Contains(err.Error(), "needs the pooled text embedding") {
		t.Fatalf("refiner without added conditioning: %v", err)
	}
	short := &Added{TextEmbeds: want("text_embeds"), TimeIDs: want("time_ids").Float64s()[:8]}
	if _, err := refiner.ForwardAdded(sample, ts, ctx, short, nil); err == nil || !strings.Contains(err.Error(), "8 time ids for a batch of 2") {
		t.Fatalf("refiner with 8 time ids: %v", err)
	}
	sd := loadTiny(t, "tiny-sd2", false, tensor.Float64)
	sdWant := fixtures.Tensors(t, "tiny-sd2-components")
	added := &Added{TextEmbeds: want("text_embeds"), TimeIDs: want("time_ids").Float64s()}
	if _, err := sd.ForwardAdded(sdWant("sample"), sdWant("timesteps").Float64s(), sdWant("context"), added, nil); err == nil ||
		!strings.Contains(err.Error(), "without text_time conditioning") {
		t.Fatalf("SD 2 UNet given added conditioning: %v", err)
	}
}

// The single file's names and shapes give the folder's transformer depths and
// text_time conditioning. (InferConfig as a whole refuses the tiny model: its
// 8 norm groups are not in the file, and the released 32 do not divide 16
// channels.) The time ids' width is not in the file either: it is SDXL's 256,
// which the tiny model keeps.
func TestInferRefinerConfig(t *testing.T) {
	folder, err := LoadConfig(fixtures.Path("models", refinerModel, "unet", "config.json"), SD14())
	if err != nil {
		t.Fatal(err)
	}
	f, err := weights.Open(fixtures.Path("models", refinerModel+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := folder
	got.TransformerLayersPerBlock, got.AdditionEmbedType, got.AdditionTimeEmbedDim, got.ProjectionClassEmbeddingsInputDim = nil, "", 0, 0
	inferSDXL(f, &got)
	for _, k := range []struct {
		key       string
		got, want any
	}{
		{"transformer_layers_per_block", got.TransformerLayersPerBlock, folder.TransformerLayersPerBlock},
		{"addition_embed_type", got.AdditionEmbedType, folder.AdditionEmbedType},
		{"addition_time_embed_dim", got.AdditionTimeEmbedDim, folder.AdditionTimeEmbedDim},
		{"projection_class_embeddings_input_dim", got.ProjectionClassEmbeddingsInputDim, folder.ProjectionClassEmbeddingsInputDim},
	} {
		if fmt.Sprint(k.got) != fmt.Sprint(k.want) {
			t.Errorf("%s: inferred %v, folder says %v", k.key, k.got, k.want)
		}
	}
}
