package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/rfnet/rfnet-native/tensor"
)

// latentRGB maps SD's 4 latent channels to R, G and B: the "approximate
// cheap" factors AUTOMATIC1111's web UI previews SD 1.x and 2.x latents with
// (modules/sd_samplers_common.py, latent_rgb_factors), fitted by least
// squares against VAE decodes. Channel c of the latent adds latentRGB[c].
var latentRGB = [4][3]float32{
	{0.3512, 0.2297, 0.3227},
	{0.3250, 0.4974, 0.2350},
	{-0.2829, 0.1762, 0.2721},
	{-0.2120, -0.2616, -0.7177},
}

// LatentPreview is a cheap picture of latents [1, 4, H/8, W/8]: each latent
// cell becomes one pixel through the fixed linear map latentRGB, from [-1, 1]
// to [0, 255], encoded as PNG. It needs no VAE decode, so a server can send
// one after every step; the picture is an eighth of the image's size and its
// colours are only approximate.
func LatentPreview(latents *tensor.Tensor) ([]byte, error) {
	s := latents.Shape()
	if len(s) != 4 || s[0] != 1 || s[1] != len(latentRGB) {
		return nil, fmt.Errorf("pipeline: latent preview of shape %v, want [1 %d h w]", s, len(latentRGB))
	}
	h, w := s[2], s[3]
	v := latents.Float32s()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var rgb [3]float32
			for c := range latentRGB {
				l := v[(c*h+y)*w+x]
				for k := range rgb {
					rgb[k] += l * latentRGB[c][k]
				}
			}
			img.SetRGBA(x, y, color.RGBA{byte8(rgb[0]), byte8(rgb[1]), byte8(rgb[2]), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("pipeline: latent preview: %w", err)
	}
	return buf.Bytes(), nil
}

// byte8 maps [-1, 1] to [0, 255], clamping (NaN gives 0).
func byte8(v float32) byte {
	u := (v + 1) * 127.5
	switch {
	case !(u > 0):
		return 0
	case u >= 255:
		return 255
	}
	return byte(u + 0.5)
}
