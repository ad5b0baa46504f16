package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// gligenLayout is a GLIGENLayout file: "phrases" and "boxes" as GLIGEN and
// diffusers' layout pipelines take them (gligen_phrases and gligen_boxes in
// StableDiffusionGLIGENPipeline), with this project's prompt, background and
// negative prompt beside them, all three optional.
type gligenLayout struct {
	Prompt     string            `json:"prompt"`
	Phrases    []string          `json:"phrases"`
	Boxes      []json.RawMessage `json:"boxes"` // each [x0, y0, x1, y1] in [0, 1]; raw, so that a bad one is reported with its phrase
	Background string            `json:"background"`
	Negative   string            `json:"negative"`
}

// decodeGLIGEN reads a GLIGEN layout. Its boxes are exact fractions of the
// canvas, so a box outside [0, 1] or without area is an error, as such a box
// is in a plan.json, not a repair: pixel boxes given by mistake are the usual
// cause, and rescaling them would hide it.
func decodeGLIGEN(raw []byte) (*Plan, error) {
	var g gligenLayout
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, err
	}
	if len(g.Phrases) != len(g.Boxes) {
		return nil, fmt.Errorf("%d phrases and %d boxes (want one box per phrase)", len(g.Phrases), len(g.Boxes))
	}
	p := &Plan{Version: PlanVersion, Prompt: g.Prompt, Background: g.Background, Negative: g.Negative}
	for i, name := range g.Phrases {
		var b []float64
		if err := json.Unmarshal(g.Boxes[i], &b); err != nil || len(b) != 4 {
			return nil, fmt.Errorf("object %d (%s): box %s is not [x0, y0, x1, y1]", i, Quote(name), Quote(string(g.Boxes[i])))
		}
		for _, v := range b {
			if v < 0 || v > 1 {
				return nil, fmt.Errorf("object %d (%s): box %v leaves [0, 1] (a GLIGEN box is [x0, y0, x1, y1] in fractions of the image; "+
					"boxes in pixels, [x, y, width, height] on the %d×%d canvas, go in a plan.json or LMD layout text)", i, Quote(name), b, Canvas, Canvas)
			}
		}
		if b[2] <= b[0] || b[3] <= b[1] {
			return nil, fmt.Errorf("object %d (%s): box %v has no area (want x0 < x1 and y0 < y1)", i, Quote(name), b)
		}
		// Scaling each corner before subtracting keeps boxes written from
		// whole pixels exact: k/512·512 is k again in floating point.
		x0, y0, x1, y1 := b[0]*Canvas, b[1]*Canvas, b[2]*Canvas, b[3]*Canvas
		p.Objects = append(p.Objects, Object{Name: name, Box: [4]float64{x0, y0, x1 - x0, y1 - y0}})
	}
	return p, nil
}

// encodeGLIGEN writes the plan as a GLIGEN layout, one box to a line. The
// boxes are Object.NormalizedBox at full precision: reading them back gives
// whole-pixel boxes exactly, and others to within floating-point rounding of
// x + w and y + h.
func encodeGLIGEN(p *Plan) ([]byte, error) {
	str := func(s string) []byte { data, _ := json.Marshal(s); return data } // a string always marshals
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"prompt\": %s,\n  \"phrases\": [", str(p.Prompt))
	for i, o := range p.Objects {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(str(o.Name))
	}
	b.WriteString("],\n  \"boxes\": [")
	for i, o := range p.Objects {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    [")
		for j, v := range o.NormalizedBox() {
			num, err := json.Marshal(v)
			if err != nil { // a NaN or infinite box, which only code can make
				return nil, fmt.Errorf("llm: plan: object %d (%s): %w", i, Quote(o.Name), err)
			}
			if j > 0 {
				b.WriteString(", ")
			}
			b.Write(num)
		}
		b.WriteByte(']')
	}
	if len(p.Objects) > 0 {
		b.WriteString("\n  ")
	}
	fmt.Fprintf(&b, "],\n  \"background\": %s,\n  \"negative\": %s\n}\n", str(p.Background), str(p.Negative))
	return b.Bytes(), nil
}
