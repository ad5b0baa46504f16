package llm

import (
	"fmt"
	"strings"
)

// LMD's labels, spelled as in its prompt template and utils/parse.py. Its
// template's examples put a "Caption:" line before "Objects:"; its parser
// drops what comes before "Objects:", and ours reads the caption from there.
const (
	lmdCaption    = "Caption:"
	lmdObjects    = "Objects:"
	lmdBackground = "Background prompt:"
	lmdNegative   = "Negative prompt:"
)

var lmdLabels = []string{lmdCaption, lmdObjects, lmdBackground, lmdNegative}

// decodeLMD reads LMD's layout text as its parse_input_with_negative does
// (§3.4 of the algorithm notes, without the Descriptions sections): the object
// list, then "Background prompt:" and "Negative prompt:", both optional here
// (LMD asks for a missing background interactively), a negative prompt "None"
// meaning none. The boxes then go through filterBoxes, as LMD filters a layout
// before generating from it, with scaling off as in the published run: boxes
// without area or covering the whole canvas are dropped, and a box leaving the
// canvas rescales all of them; the notes say so.
func decodeLMD(text string) (*Plan, error) {
	p := &Plan{Version: PlanVersion}
	last := ""
	for _, label := range lmdLabels {
		switch i, n := strings.Index(text, label), strings.Count(text, label); {
		case n > 1:
			return nil, fmt.Errorf("%q appears %d times (one layout to a file)", label, n)
		case n == 1 && last != "" && i < strings.Index(text, last):
			return nil, fmt.Errorf("%q comes before %q (want %s in this order)", label, last, strings.Join(lmdLabels, ", "))
		case n == 1:
			last = label
		}
	}
	if before, after, ok := strings.Cut(text, lmdObjects); ok {
		if _, caption, ok := strings.Cut(before, lmdCaption); ok {
			p.Prompt = strings.TrimSpace(caption)
		}
		text = after
	} else if strings.Contains(text, lmdCaption) {
		return nil, fmt.Errorf("%q without %q before the object list", lmdCaption, lmdObjects)
	}
	text, neg, _ := strings.Cut(text, lmdNegative)
	objText, bg, _ := strings.Cut(text, lmdBackground)
	p.Background, p.Negative = strings.TrimSpace(bg), strings.TrimSpace(neg)
	if p.Negative == "None" {
		p.Negative = ""
	}
	objs, err := parseObjectList(objText)
	if err != nil {
		return nil, err
	}
	kept, notes := filterBoxes(objs, DefaultOptions())
	for _, k := range kept {
		p.Objects = append(p.Objects, Object{Name: k.Name, Box: k.box})
	}
	p.Notes = notes
	return p, nil
}

// encodeLMD writes the plan as LMD writes a layout into its cache (the object
// list, then the background and negative prompts, a line each), after the
// caption as its template's examples give it. Boxes are rounded to whole
// pixels as LMD's own are (pixelBox); descriptions have no place in it.
func encodeLMD(p *Plan) ([]byte, error) {
	if err := lmdWritable(p); err != nil {
		return nil, err
	}
	var b strings.Builder
	if p.Prompt != "" {
		fmt.Fprintf(&b, "%s %s\n", lmdCaption, p.Prompt)
	}
	b.WriteString(lmdObjects + " [")
	for i, o := range p.Objects {
		if i > 0 {
			b.WriteString(", ")
		}
		x := pixelBox(o.Box)
		fmt.Fprintf(&b, "(%s, [%d, %d, %d, %d])", pyString(o.Name), int(x[0]), int(x[1]), int(x[2]), int(x[3]))
	}
	b.WriteString("]\n")
	for _, line := range [][2]string{{lmdBackground, p.Background}, {lmdNegative, p.Negative}} {
		b.WriteString(strings.TrimRight(line[0]+" "+line[1], " ") + "\n")
	}
	return []byte(b.String()), nil
}

// lmdWritable refuses a plan whose text would be read back differently: the
// reader cuts the text at the labels before it parses the object list.
func lmdWritable(p *Plan) error {
	check := func(what, text string) error {
		for _, label := range lmdLabels {
			if strings.Contains(text, label) {
				return fmt.Errorf("llm: plan: %s holds %q, which cannot be written as %s", what, label, planFormats[LMDLayout].title)
			}
		}
		return nil
	}
	if err := check("the prompt", p.Prompt); err != nil {
		return err
	}
	for i, o := range p.Objects {
		if err := check(fmt.Sprintf("object %d (%s)", i, Quote(o.Name)), o.Name); err != nil {
			return err
		}
	}
	if err := check("the background", p.Background); err != nil {
		return err
	}
	return check("the negative prompt", p.Negative)
}

// pyString is s as a Python string literal, read back alike by LMD's
// ast.literal_eval and by parseLiteral: single quotes unless s holds a single
// quote and no double quote (Python's repr chooses the same way), with the
// backslash, the quote and line breaks escaped.
func pyString(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch r {
		case '\\', quote:
			b.WriteRune('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}
