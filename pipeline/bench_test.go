package pipeline

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rfnet/rfnet-native/cpu"
	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/internal/randckpt"
	"github.com/rfnet/rfnet-native/tensor"
	"github.com/rfnet/rfnet-native/tensor/backendtest"
)

// Benchmarks of single model calls on the CPU backend (float32):
//
//	go test -run '^$' -bench . -benchtime 2x ./pipeline
//
// The full-size ones build a random SD 1.5 checkpoint with the released layout
// (internal/randckpt) once per run; its contents do not change the speed.

var (
	sd15Once  sync.Once
	sd15Model *Model
	sd15Err   error
)

func fullSizeSD15(b *testing.B) *Model {
	sd15Once.Do(func() {
		m, err := randckpt.ReadSingleFile("sd15-single-file")
		if err != nil {
			sd15Err = err
			return
		}
		dir, err := os.MkdirTemp("", "rfnet-bench")
		if err != nil {
			sd15Err = err
			return
		}
		p := filepath.Join(dir, "sd15.safetensors")
		if sd15Err = randckpt.Write(p, m, 1); sd15Err != nil {
			return
		}
		defer os.RemoveAll(dir)
		sd15Model, sd15Err = Load(p, LoadOptions{Backend: cpu.New(), DType: tensor.Float32, Tokenizer: fixtures.Path("tokenizer", "tiny")})
	})
	if sd15Err != nil {
		b.Fatal(sd15Err)
	}
	return sd15Model
}

func benchUNet(b *testing.B, m *Model, batch, size int) {
	latent := backendtest.Randn(m.Backend, tensor.Float32, 1, batch, 4, size, size)
	ctx := backendtest.Randn(m.Backend, tensor.Float32, 2, batch, 77, m.Variant.UNet.CrossAttentionDim)
	ts := make([]float64, batch)
	for i := range ts {
		ts[i] = 500
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.UNet.Forward(latent, ts, ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/call")
}

func benchDecode(b *testing.B, m *Model, size int) {
	latent := backendtest.Randn(m.Backend, tensor.Float32, 1, 1, 4, size, size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.DecodeImage(latent)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/call")
}

// BenchmarkUNetTiny is one classifier-free-guidance UNet call (batch 2) of the tiny SD 1.x model at an 8×8 latent.
func BenchmarkUNetTiny(b *testing.B) {
	benchUNet(b, loadTiny(b, "tiny-sd1", false, tensor.Float32), 2, 8)
}

// BenchmarkVAEDecodeTiny decodes an 8×8 latent (64×64 image) with the tiny model.
func BenchmarkVAEDecodeTiny(b *testing.B) {
	benchDecode(b, loadTiny(b, "tiny-sd1", false, tensor.Float32), 8)
}

// BenchmarkUNetSD15Latent32 is one UNet call (batch 1) of full-size SD 1.5 at a 32×32 latent (256×256 image).
func BenchmarkUNetSD15Latent32(b *testing.B) { benchUNet(b, fullSizeSD15(b), 1, 32) }

// BenchmarkVAEDecodeSD15Latent32 decodes a 32×32 latent to a 256×256 image with full-size SD 1.5's VAE.
func BenchmarkVAEDecodeSD15Latent32(b *testing.B) { benchDecode(b, fullSizeSD15(b), 32) }
