package clip

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/weights"
)

// The reference calls of the tiny SDXL refiner (testdata/gen/make_refiner.py):
// a plain prompt, the empty prompt (the refiner encodes an empty negative
// prompt as text) and one past 77 tokens.
var refinerCases = []string{"plain", "empty", "long"}

const refinerModel = "tiny-sdxl-refiner"

// refinerIDs reads ids_<case> [1, 77] (int32) from the refiner's reference calls.
func refinerIDs(t *testing.T, c string) []int32 {
	t.Helper()
	f, err := weights.Open(fixtures.Path("parity", refinerModel+"-components.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, info, err := f.Raw("ids_" + c)
	if err != nil || info.DType != "I32" {
		t.Fatalf("ids_%s: %v (%s)", c, err, info.DType)
	}
	ids := make([]int32, len(raw)/4)
	for i := range ids {
		ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ids
}

// tokenizer_2 pads with "!" (its special_tokens_map.json says so) and gives
// open_clip's ids; make_refiner.py took them from open_clip's tokenizer.
func TestRefinerTokenizerMatchesReference(t *testing.T) {
	tok, err := LoadTokenizer(fixtures.Path("models", refinerModel, "tokenizer_2"), "")
	if err != nil {
		t.Fatal(err)
	}
	tok = tok.WithSplit(SplitOpenCLIP)
	prompts := map[string]string{"plain": "a photo of an astronaut riding a horse on the moon", "empty": "",
		"long": strings.TrimSuffix(strings.Repeat("a mouse hunting a lion in the savanna, ", 12), ", ")}
	for _, c := range refinerCases {
		got, truncated := tok.Tokenize(prompts[c])
		if want := refinerIDs(t, c); !slices.Equal(got, want) {
			t.Fatalf("%s: ids\n got %v\nwant %v", c, got, want)
		}
		if (truncated > 0) != (c == "long") {
			t.Fatalf("%s: %d tokens truncated", c, truncated)
		}
	}
}

// refinerEncoders loads the tiny refiner's text encoder from its folder
// (text_encoder_2/) and from the single file (OpenCLIP names, with the
// folder's config: the tiny width breaks the 64-channels-per-head convention).
func refinerEncoders(t *testing.T, d tensor.DType) map[string]*ProjectedEncoder {
	t.Helper()
	cfg, err := LoadConfig(fixtures.Path("models", refinerModel, "text_encoder_2", "config.json"), OpenCLIPBigG14())
	if err != nil {
		t.Fatal(err)
	}
	folder, err := weights.Open(fixtures.Path("models", refinerModel, "text_encoder_2", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { folder.Close() })
	single, err := weights.Open(fixtures.Path("models", refinerModel+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { single.Close() })
	inferred, err := InferProjectedConfig(single, PrefixRefiner)
	if err != nil {
		t.Fatal(err)
	}
	inferred.NumAttentionHeads = cfg.NumAttentionHeads
	if inferred != cfg {
		t.Fatalf("single file: inferred %+v, folder says %+v", inferred, cfg)
	}
	out := map[string]*ProjectedEncoder{}
	for layout, m := range map[string]*weights.Mapping{"folder": MapFolder(folder), "single": MapOpenCLIPProjected(single, PrefixRefiner)} {
		src := weights.NewSource("text encoder", m, cpu.New(), d)
		out[layout] = LoadProjected(src, cfg)
		if err := src.Err(); err != nil {
			t.Fatalf("%s: %v", layout, err)
		}
	}
	return out
}

func TestProjectedEncoderMatchesReference(t *testing.T) {
	want := fixtures.Tensors(t, refinerModel+"-components")
	b := cpu.New()
	for _, d := range []tensor.DType{tensor.Float32, tensor.Float64} {
		for layout, enc := range refinerEncoders(t, d) {
			for _, c := range refinerCases {
				emb, pooled := enc.EncodeSDXL(tensor.FromInt32(b, tensor.Shape{1, 77}, refinerIDs(t, c)))
				for _, r := range []struct {
					name string
					got  *tensor.Tensor
				}{{"embeds_" + c, emb}, {"pooled_" + c, pooled}} {
					ref := want(r.name)
					if !r.got.Shape().Equal(ref.Shape()) {
						t.Fatalf("%s %s: shape %v, want %v", layout, r.name, r.got.Shape(), ref.Shape())
					}
					if e := fixtures.RelL2(r.got, ref); !(e < 1e-4) {
						t.Errorf("%s %s %s: relative L2 error %.3g", layout, d, r.name, e)
					}
				}
			}
		}
	}
}

// In a batch, each row is pooled at its own end-of-text token.
func TestEncodeSDXLPoolsEachRow(t *testing.T) {
	enc := refinerEncoders(t, tensor.Float64)["folder"]
	want := fixtures.Tensors(t, refinerModel+"-components")
	ids := append(refinerIDs(t, "plain"), refinerIDs(t, "long")...)
	_, pooled := enc.EncodeSDXL(tensor.FromInt32(cpu.New(), tensor.Shape{2, 77}, ids))
	for i, c := range []string{"plain", "long"} {
		if e := fixtures.RelL2(pooled.Narrow(0, i, 1), want("pooled_"+c)); !(e < 1e-4) {
			t.Errorf("row %d (%s): relative L2 error %.3g from the reference", i, c, e)
		}
	}
}
