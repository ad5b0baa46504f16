package llm

import (
	"fmt"
	"math"
	"strings"
)

// Options tune how an answer becomes a plan.
type Options struct {
	// ScaleBoxes rescales the boxes to fill the canvas (the reference CLI's
	// default; the paper's published run leaves it off). Scaling also switches on
	// by itself when a box leaves the canvas.
	ScaleBoxes bool
	// MaxScale bounds that scaling (3 in the reference).
	MaxScale float64
	// MaxObjects caps the number of objects (0: no cap); extras are dropped with a note (Plan.Cap).
	MaxObjects int
}

// DefaultOptions are the published run's settings.
func DefaultOptions() Options { return Options{MaxScale: 3, MaxObjects: 6} }

// buildPlan checks an answer and turns it into a plan: boxes filtered and
// scaled as the reference's filter_boxes does, descriptions matched to boxes
// by name, missing alternatives filled from the main description.
func buildPlan(prompt string, r *reply, o Options) (*Plan, error) {
	p := &Plan{Version: PlanVersion, Prompt: prompt, Background: r.Background, Negative: r.Negative}
	objs, notes := filterBoxes(r.Objects, o)
	p.Notes = append(p.Notes, notes...)
	names := make([]string, len(objs))
	for i, ob := range objs {
		names[i] = ob.Name
	}
	keep, note := capObjects(o.MaxObjects, names)
	if note != "" {
		objs = objs[:keep]
		p.Notes = append(p.Notes, note)
	}
	main := queues(r.Main)
	alt := [2]map[string][]string{queues(r.More[0]), queues(r.More[1])}
	for i, ob := range objs {
		key := normName(ob.Name)
		d1, ok := main.next(key, r.Main, i)
		if !ok {
			return nil, fmt.Errorf("llm: %w: no description for %s (Descriptions: %s)", ErrNoPlan, Quote(ob.Name), Quote(fmt.Sprint(r.Main)))
		}
		descs := []string{d1}
		for k := range alt {
			d, ok := queueMap(alt[k]).next(key, r.More[k], i)
			if !ok {
				d = d1
				p.Notes = append(p.Notes, fmt.Sprintf("%s has no alternative description %d; the main one stands in", Quote(ob.Name), k+1))
			}
			descs = append(descs, d)
		}
		p.Objects = append(p.Objects, Object{Name: ob.Name, Box: ob.box, Descriptions: descs})
	}
	if len(p.Objects) == 0 {
		p.Notes = append(p.Notes, "no objects: the scene is generated from the background prompt alone")
	}
	return p, p.Check()
}

type queueMap map[string][]string

func queues(list []namedText) queueMap {
	q := queueMap{}
	for _, t := range list {
		k := normName(t.Name)
		q[k] = append(q[k], strings.TrimSpace(t.Text))
	}
	return q
}

// next takes the next description for name; a name given fewer descriptions than
// boxes reuses its last one. With no match by name, the description at the same
// position stands in (the reference pairs by position only).
func (q queueMap) next(name string, list []namedText, pos int) (string, bool) {
	if ds := q[name]; len(ds) > 0 {
		d := ds[0]
		if len(ds) > 1 {
			q[name] = ds[1:]
		}
		return d, true
	}
	if pos < len(list) {
		return strings.TrimSpace(list[pos].Text), true
	}
	return "", false
}

// normName is the matching key of an object name: lower case, trimmed, no trailing period.
func normName(s string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(s), "."))
}

type keptObject struct {
	Name string
	box  [4]float64
}

// filterBoxes is the reference's filter_boxes (§3.5 of the algorithm notes)
// on the Canvas, with ignore_background on.
func filterBoxes(in []replyObject, o Options) ([]keptObject, []string) {
	const S = Canvas
	var notes []string
	var kept []keptObject
	scale := o.ScaleBoxes
	for _, ob := range in {
		b := ob.Box
		switch {
		case len(b) != 4 || b[2] <= 0 || b[3] <= 0:
			notes = append(notes, fmt.Sprintf("dropped %s: box %v has no area", Quote(ob.Name), b))
			continue
		case (b[2] >= S && b[3] >= S) || b[0] > S || b[1] > S:
			notes = append(notes, fmt.Sprintf("dropped %s: box %v covers the whole canvas or lies outside it", Quote(ob.Name), b))
			continue
		}
		if b[0] < 0 || b[1] < 0 || b[0]+b[2] > S || b[1]+b[3] > S {
			if !scale {
				notes = append(notes, fmt.Sprintf("box %v of %s leaves the canvas: all boxes were rescaled", b, Quote(ob.Name)))
			}
			scale = true
		}
		kept = append(kept, keptObject{Name: strings.TrimRight(strings.TrimSpace(ob.Name), "."), box: [4]float64{b[0], b[1], b[2], b[3]}})
	}
	if len(kept) == 0 {
		return nil, notes
	}
	L, R, T, B := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, k := range kept {
		L, R = math.Min(L, k.box[0]), math.Max(R, k.box[0]+k.box[2])
		T, B = math.Min(T, k.box[1]), math.Max(B, k.box[1]+k.box[3])
	}
	if R-L == 0 {
		return nil, append(notes, "no box has a width")
	}
	maxScale := o.MaxScale
	if maxScale <= 0 {
		maxScale = 3
	}
	shift, f := -L, math.Min(math.Min(S/(R-L), S/(B-T)), maxScale)
	for i := range kept {
		b := &kept[i].box
		if scale {
			b[0], b[1], b[2], b[3] = (b[0]+shift)*f, b[1]*f, b[2]*f, b[3]*f
			off := 0.0
			if T*f+off < 0 {
				off -= T * f
			}
			if B*f+off >= S {
				off -= B*f - S
			}
			b[1] += off
			// The reference "fixes" h after zeroing y, which leaves h unchanged (§14.19).
			b[1] = math.Max(b[1], 0)
		}
		*b = pixelBox(*b)
	}
	return kept, notes
}

// pixelBox is a box on whole pixels, rounded half to even as the reference's
// np.round does, and the form LMD's layout text stores. Rounding x and w
// separately can overshoot the canvas edge by a pixel, so w and h are cut back.
func pixelBox(b [4]float64) [4]float64 {
	for j := range b {
		b[j] = math.RoundToEven(b[j])
	}
	b[2], b[3] = math.Min(b[2], Canvas-b[0]), math.Min(b[3], Canvas-b[1])
	return b
}
