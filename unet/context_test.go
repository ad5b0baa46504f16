package unet

import (
	"slices"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
	"github.com/rfnet/rfnet-native/tensor"
)

// A prepared context gives the raw context's prediction bit for bit (the
// same to_k and to_v products of the same text, computed once instead of per
// call), in the plain call and with a hook, whose maps are the same too; a
// context of another UNet is refused.
func TestPreparedContextMatchesRaw(t *testing.T) {
	for _, model := range []string{"tiny-sd1", "tiny-sd2"} {
		u := loadTiny(t, model, false, tensor.Float32)
		want := fixtures.Tensors(t, model+"-components")
		sample, ts, text := want("sample").To(tensor.Float32), want("timesteps").Float64s(), want("context").To(tensor.Float32)
		c := u.PrepareContext(text)
		for _, hooked := range []bool{false, true} {
			var rawMaps, prepMaps []float64
			hook := func(maps *[]float64) Hook {
				if !hooked {
					return nil
				}
				return func(l Layer, p *tensor.Tensor) bool { *maps = append(*maps, p.Float64s()...); return false }
			}
			raw, err := u.Forward(sample, ts, text, hook(&rawMaps))
			if err != nil {
				t.Fatal(err)
			}
			prep, err := u.ForwardContext(sample, ts, c, nil, hook(&prepMaps))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(raw.Float64s(), prep.Float64s()) || !slices.Equal(rawMaps, prepMaps) {
				t.Errorf("%s hooked=%v: the prepared context's prediction (or maps) differ from the raw context's", model, hooked)
			}
		}
		c.Free()
		other := loadTiny(t, model, false, tensor.Float32)
		if _, err := other.ForwardContext(sample, ts, other.PrepareContext(text), nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ForwardContext(sample, ts, u.PrepareContext(text), nil, nil); err == nil {
			t.Errorf("%s: a context prepared by another UNet was accepted", model)
		}
	}
}
