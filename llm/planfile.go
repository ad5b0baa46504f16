package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
)

// PlanFormat is a plan file format: ReadPlan reads every one, Plan.WriteAs writes any.
type PlanFormat string

const (
	// PlanJSON is this project's plan.json (Plan, version 1), the only format
	// that holds descriptions, the planner and its notes.
	PlanJSON PlanFormat = "json"
	// LMDLayout is LLM-grounded Diffusion's layout text: a Python list of
	// (name, [x, y, w, h]) in whole pixels of the 512×512 canvas, then optional
	// "Background prompt:" and "Negative prompt:" lines.
	LMDLayout PlanFormat = "lmd"
	// GLIGENLayout is JSON with "phrases" and their "boxes" [x0, y0, x1, y1]
	// normalized to [0, 1], as GLIGEN and diffusers' layout pipelines take them.
	GLIGENLayout PlanFormat = "gligen"
)

// PlanFormats are the formats, the default first.
var PlanFormats = []PlanFormat{PlanJSON, LMDLayout, GLIGENLayout}

// planFormats describes each format, in PlanFormats' order.
var planFormats = map[PlanFormat]struct {
	title       string // in messages
	defaultFile string // where rfnet-native plan writes it without --out
	leavesOut   string // what of a plan the format cannot hold
}{
	PlanJSON:     {"plan.json", "plan.json", ""},
	LMDLayout:    {"LMD layout text", "plan-lmd.txt", "descriptions, source and notes; boxes are rounded to whole pixels"},
	GLIGENLayout: {"GLIGEN layout", "plan-gligen.json", "descriptions, source and notes"},
}

// ParsePlanFormat is the format named s (json, lmd or gligen).
func ParsePlanFormat(s string) (PlanFormat, error) {
	if _, ok := planFormats[PlanFormat(s)]; ok {
		return PlanFormat(s), nil
	}
	names := make([]string, len(PlanFormats))
	for i, f := range PlanFormats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown plan format %s (want %s)", Quote(s), strings.Join(names, ", "))
}

// DefaultFile is the file name a plan in this format is written to by default.
func (f PlanFormat) DefaultFile() string { return planFormats[f].defaultFile }

// LeavesOut says what of a plan the format cannot hold ("" for plan.json).
func (f PlanFormat) LeavesOut() string { return planFormats[f].leavesOut }

// ReadPlan reads a plan file in any of the PlanFormats and checks it.
func ReadPlan(path string) (*Plan, error) {
	raw, err := regular.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llm: plan: %w", err)
	}
	p, err := decodePlan(raw)
	if err != nil {
		return nil, fmt.Errorf("llm: plan %s: %w", path, err)
	}
	return p, nil
}

// decodePlan turns a plan file of any format into a Plan, then checks it the
// same way whatever the format (Plan.Check; --max-objects caps it later, as it
// caps the LLM's plans). The layout formats hold no descriptions: their objects
// get one empty description, which the pipeline leaves out of the prompts, so
// each is drawn from its name alone.
func decodePlan(raw []byte) (*Plan, error) {
	raw = bytes.TrimPrefix(raw, []byte("\uFEFF")) // editors on Windows start UTF-8 files with a byte-order mark
	f, err := planFormatOf(raw)
	if err != nil {
		return nil, err
	}
	var p *Plan
	switch f {
	case PlanJSON:
		p, err = decodePlanJSON(raw)
	case LMDLayout:
		p, err = decodeLMD(string(raw))
	case GLIGENLayout:
		p, err = decodeGLIGEN(raw)
	}
	// Errors in a layout say how the file was read; a plan.json's need not.
	as := func(err error) error {
		if f == PlanJSON {
			return err
		}
		return fmt.Errorf("read as %s: %w", planFormats[f].title, err)
	}
	if err != nil {
		return nil, as(err)
	}
	if f != PlanJSON && len(p.Objects) > 0 {
		for i := range p.Objects {
			p.Objects[i].Descriptions = []string{""}
		}
		p.Notes = append(p.Notes, fmt.Sprintf("the %s has no descriptions: each object is drawn from its name alone", planFormats[f].title))
	}
	if err := p.Check(); err != nil {
		return nil, as(err)
	}
	return p, nil
}

// planFormatOf decides a plan file's format, by its content rather than its
// extension: plan.json and a GLIGEN layout are both .json files, and LMD's
// layout text has no extension of its own (LMD keeps it in JSON caches, people
// paste it into .txt files). A JSON object is a GLIGEN layout when it has
// "phrases" or "boxes", else a plan.json when it has "version" or "objects" (or
// does not parse, so that the JSON error is reported); text that starts with a
// list or holds LMD's labels is LMD layout text.
func planFormatOf(raw []byte) (PlanFormat, error) {
	text := strings.TrimSpace(string(raw))
	if strings.HasPrefix(text, "{") {
		var keys map[string]json.RawMessage
		err := json.Unmarshal(raw, &keys)
		has := func(k string) bool { _, ok := keys[k]; return ok }
		switch {
		case err == nil && (has("phrases") || has("boxes")):
			return GLIGENLayout, nil
		case err != nil || has("version") || has("objects"):
			return PlanJSON, nil
		}
	} else if strings.HasPrefix(text, "[") || slices.ContainsFunc(lmdLabels, func(l string) bool { return strings.Contains(text, l) }) {
		return LMDLayout, nil
	}
	return "", fmt.Errorf(`not a plan: want a plan.json ({"version": 1, "objects": [...]}), ` +
		`a GLIGEN layout ({"phrases": [...], "boxes": [[x0, y0, x1, y1], ...]}) or ` +
		`LMD layout text ([('name', [x, y, w, h]), ...], then optional "Background prompt:" and "Negative prompt:" lines)`)
}

// decodePlanJSON reads this project's plan.json.
func decodePlanJSON(raw []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	if p.Version != PlanVersion {
		return nil, fmt.Errorf("version %d, this build reads version %d", p.Version, PlanVersion)
	}
	return &p, nil
}

// MarshalAs is the plan file's contents in format f.
func (p *Plan) MarshalAs(f PlanFormat) ([]byte, error) {
	switch f {
	case PlanJSON:
		return p.Marshal()
	case LMDLayout:
		return encodeLMD(p)
	case GLIGENLayout:
		return encodeGLIGEN(p)
	}
	_, err := ParsePlanFormat(string(f))
	return nil, fmt.Errorf("llm: plan: %w", err)
}

// WriteAs writes the plan in format f, atomically.
func (p *Plan) WriteAs(path string, f PlanFormat) error {
	data, err := p.MarshalAs(f)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, data)
}
