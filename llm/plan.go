package llm

import (
	"encoding/json"
	"fmt"
	"strings"
)

// PlanVersion is the version of the plan file format this package writes and reads.
const PlanVersion = 1

// Canvas is the size of the box coordinate system, in pixels (the LLM is asked
// for boxes on a 512×512 canvas whatever the image size).
const Canvas = 512

// Plan is a planned scene.
type Plan struct {
	Version int    `json:"version"`
	Prompt  string `json:"prompt"`
	// Objects, each with its box [x, y, w, h] on the Canvas (top-left origin)
	// and its candidate descriptions: the main one first, then the alternatives.
	Objects    []Object `json:"objects"`
	Background string   `json:"background"`
	Negative   string   `json:"negative"`
	// Source says where the plan came from; Notes list the repairs applied to it.
	Source *Source  `json:"source,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Object is one planned object.
type Object struct {
	Name         string     `json:"name"`
	Box          [4]float64 `json:"box"`
	Descriptions []string   `json:"descriptions"`
}

// Source records the planner.
type Source struct {
	Planner         string `json:"planner"` // openai, offline, file
	Endpoint        string `json:"endpoint,omitempty"`
	Model           string `json:"model,omitempty"`
	TemplateVersion string `json:"template_version,omitempty"`
	Cached          bool   `json:"cached,omitempty"`
	Response        string `json:"response,omitempty"`
}

// NormalizedBox returns an object's box as (x0, y0, x1, y1) in [0, 1].
func (o Object) NormalizedBox() [4]float64 {
	b := o.Box
	return [4]float64{b[0] / Canvas, b[1] / Canvas, (b[0] + b[2]) / Canvas, (b[1] + b[3]) / Canvas}
}

// Cap keeps the first n objects (all of them when n <= 0) and notes what it
// dropped. Every plan source goes through capObjects: the LLM's answers, the
// offline planner and plan files.
func (p *Plan) Cap(n int) {
	names := make([]string, len(p.Objects))
	for i, o := range p.Objects {
		names[i] = o.Name
	}
	if keep, note := capObjects(n, names); note != "" {
		p.Objects = p.Objects[:keep]
		p.Notes = append(p.Notes, note)
	}
}

// capObjects is how many of the named objects a cap of n keeps, and the note
// that says what went ("" when nothing did).
func capObjects(n int, names []string) (keep int, note string) {
	if n <= 0 || len(names) <= n {
		return len(names), ""
	}
	var dropped []string
	for _, name := range names[n:] {
		dropped = append(dropped, Quote(name))
	}
	return n, fmt.Sprintf("kept the first %d of %d objects; dropped %s", n, len(names), strings.Join(dropped, ", "))
}

// Write writes the plan as plan.json (indented JSON), atomically.
func (p *Plan) Write(path string) error { return p.WriteAs(path, PlanJSON) }

// Marshal is the plan file's contents: indented JSON and a newline.
func (p *Plan) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("llm: plan: %w", err)
	}
	return append(data, '\n'), nil
}

// Check reports the first problem that makes a plan unusable: an object
// without a name or description, or a box with no area inside the canvas.
func (p *Plan) Check() error {
	for i, o := range p.Objects {
		switch {
		case o.Name == "":
			return fmt.Errorf("object %d has no name", i)
		case len(o.Descriptions) == 0:
			return fmt.Errorf("object %d (%s) has no description (want the main one and up to two alternatives)", i, Quote(o.Name))
		case o.Box[2] <= 0 || o.Box[3] <= 0:
			return fmt.Errorf("object %d (%s): box %v has no area (want [x, y, width, height] on the %d×%d canvas)", i, Quote(o.Name), o.Box, Canvas, Canvas)
		case o.Box[0] < 0 || o.Box[1] < 0 || o.Box[0]+o.Box[2] > Canvas || o.Box[1]+o.Box[3] > Canvas:
			return fmt.Errorf("object %d (%s): box %v leaves the %d×%d canvas", i, Quote(o.Name), o.Box, Canvas, Canvas)
		}
	}
	return nil
}
