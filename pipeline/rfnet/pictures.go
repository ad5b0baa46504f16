package rfnet

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/rfnet/rfnet-native/pipeline"
)

// The pictures of an out-dir beside the objects' own: what index.html shows.
const (
	regionsFile  = "regions.png"  // the aligned masks and the frozen region F over the image
	composedFile = "composed.png" // the composed initial latent, decoded
	previewFile  = "preview.png"  // the overall run's intermediate decodes, side by side

	// after objects/NN-name: the overall run's attention and the reference
	// attention of the object's word token, over the image
	overallAttentionSuffix   = "-overall-attention.png"
	referenceAttentionSuffix = "-reference-attention.png"
)

// picture is an out-dir file of scenePictures.
type picture struct {
	name string
	im   image.Image
}

// scenePictures are the pictures of the whole scene: the regions over img (the
// final image), the decoded composition and, with previews, their strip.
func scenePictures(img *image.RGBA, res *Result) []picture {
	out := []picture{
		{regionsFile, regionsPicture(img, res.Objects, res.Frozen, res.LatentH, res.LatentW)},
		{composedFile, pipeline.ToRGBA(res.Composed)},
	}
	if len(res.Previews) > 0 {
		out = append(out, picture{previewFile, previewPicture(res.Previews)})
	}
	return out
}

// attentionWindow is how many first steps the attention pictures average:
// those in which the overall run may steer, where the constraints act (all
// steps when it steers none).
func attentionWindow(c Config) int {
	if c.OverallMaxIndexStep > 0 {
		return min(c.OverallMaxIndexStep, c.Steps)
	}
	return c.Steps
}

// meanAttention averages saved maps over the first steps steps, their heads
// and the layers keys, each layer's grid resized bilinearly to h×w.
func meanAttention(saved []savedMaps, keys []string, steps, h, w int) grid {
	out := newGrid(h, w)
	n := 0
	for s := 0; s < min(steps, len(saved)); s++ {
		for _, k := range keys {
			sm, ok := saved[s][k]
			if !ok {
				continue
			}
			heads := newGrid(sm.h, sm.w)
			hw := sm.h * sm.w
			for hd := 0; hd < sm.heads; hd++ {
				for i := 0; i < hw; i++ {
					heads.v[i] += sm.v[hd*hw+i] / float64(sm.heads)
				}
			}
			for i, v := range bilinear(heads, h, w).v {
				out.v[i] += v
			}
			n++
		}
	}
	for i := range out.v {
		out.v[i] /= float64(max(n, 1))
	}
	return out
}

// phraseOf is the index of the phrase object j belongs to.
func phraseOf(s *spec, j int) int {
	for p, ph := range s.Phrases {
		for _, o := range ph.Objects {
			if o == j {
				return p
			}
		}
	}
	panic(fmt.Sprintf("rfnet: object %d is in no phrase", j))
}

// objectColor is object j's color in every picture and in index.html.
func objectColor(j int) color.RGBA { return palette[j%len(palette)] }

// regionsPicture tints each object's aligned mask in its color over img and
// outlines the frozen region F in white.
func regionsPicture(img *image.RGBA, objs []ObjectResult, frozen []float64, h, w int) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	W, H := img.Bounds().Dx(), img.Bounds().Dy()
	cell := func(x, y int) int { return (y*h/H)*w + x*w/W }
	for j, o := range objs {
		c := objectColor(j)
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				if o.AlignedMask[cell(x, y)] > 0 {
					p := out.RGBAAt(x, y)
					mix := func(a, b uint8) uint8 { return uint8((3*int(a) + 2*int(b)) / 5) }
					out.SetRGBA(x, y, color.RGBA{mix(p.R, c.R), mix(p.G, c.G), mix(p.B, c.B), 255})
				}
			}
		}
	}
	inF := func(x, y int) bool { return x >= 0 && y >= 0 && x < W && y < H && frozen[cell(x, y)] > 0 }
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			if !inF(x, y) {
				continue
			}
			for _, d := range [][2]int{{-2, 0}, {2, 0}, {0, -2}, {0, 2}} {
				if !inF(x+d[0], y+d[1]) {
					out.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
					break
				}
			}
		}
	}
	return out
}

// attentionPicture is a heatmap of an attention map over img with the
// object's scene box drawn in its color.
func attentionPicture(img *image.RGBA, att []float64, h, w int, b Box, c color.RGBA) *image.RGBA {
	out := heatmap(img, att, h, w)
	W, H := float64(img.Bounds().Dx()), float64(img.Bounds().Dy())
	strokeBox(out, image.Rect(int(b[0]*W), int(b[1]*H), int(b[2]*W), int(b[3]*H)), c)
	return out
}

// previewHeight is the height of each decode in the preview strip.
const previewHeight = 128

// previewPicture puts the previews side by side, each scaled to
// previewHeight (at most its own height) and labelled with its step.
func previewPicture(previews []Preview) *image.RGBA {
	first := pipeline.ToRGBA(previews[0].Image).Bounds()
	th := min(previewHeight, first.Dy())
	tw := max(1, first.Dx()*th/first.Dy())
	out := image.NewRGBA(image.Rect(0, 0, tw*len(previews), th))
	for i, p := range previews {
		r := image.Rect(i*tw, 0, (i+1)*tw, th)
		src := pipeline.ToRGBA(p.Image)
		xdraw.ApproxBiLinear.Scale(out, r, src, src.Bounds(), xdraw.Src, nil)
		label := fmt.Sprintf("step %d", p.Step)
		face := basicfont.Face7x13
		lw := font.MeasureString(face, label).Ceil()
		draw.Draw(out, image.Rect(r.Min.X, 0, r.Min.X+lw+4, 15), &image.Uniform{color.RGBA{0, 0, 0, 160}}, image.Point{}, draw.Over)
		d := font.Drawer{Dst: out, Src: image.White, Face: face, Dot: fixed.P(r.Min.X+2, 12)}
		d.DrawString(label)
	}
	return out
}
