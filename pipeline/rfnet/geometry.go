package rfnet

import "github.com/rfnet/rfnet-native/clip"

// Geometry is geometry.json: where the run put each object and why, which
// tokens it steered, and at which steps. Every value is recorded where the run
// computes it (Run), never worked out again afterwards. Cells are those of
// the latent grid (LatentGrid), x right and y down from the top-left corner.
type Geometry struct {
	LatentGrid [2]int           `json:"latent_grid"` // [height, width] in cells
	Objects    []ObjectGeometry `json:"objects"`     // in the run's order (sorted by name)
	// FrozenSteps is how many first steps of the overall run keep the
	// composition in the frozen region F (§9.3).
	FrozenSteps int `json:"frozen_steps"`
	// OverallSteeredSteps are the overall run's steps (0-based) that made at
	// least one steering iteration.
	OverallSteeredSteps []int `json:"overall_steered_steps"`
	// OverallTokens are the overall prompt's tokens as the text encoder reads
	// them, from the start token to the end token: position i is token i.
	OverallTokens []string `json:"overall_tokens"`
}

// ObjectGeometry is one object of geometry.json.
type ObjectGeometry struct {
	Name  string       `json:"name"`
	Box   BoxGeometry  `json:"box"`    // in the scene
	SOBox BoxGeometry  `json:"so_box"` // where its single-object run drew it
	Shift Shift        `json:"shift"`
	Mask  MaskGeometry `json:"mask"`
	// SOPrompt is the object's phrase in its single-object prompt, OverallPrompt
	// the phrase it belongs to in the overall prompt.
	SOPrompt      PhraseTokens `json:"so_prompt"`
	OverallPrompt PhraseTokens `json:"overall_prompt"`
	SAA           SAAChoice    `json:"saa"`
	// SteeredSteps are the single-object run's steps (0-based) that made at
	// least one steering iteration.
	SteeredSteps []int `json:"steered_steps"`
}

// BoxGeometry is a box normalized (x0, y0, x1, y1 in [0, 1]) and as the cells
// the losses and masks use (xa, ya, xb, yb; xb and yb excluded).
type BoxGeometry struct {
	Normalized Box    `json:"normalized"`
	Cells      [4]int `json:"latent_cells"`
}

// Shift is how far an object's run was moved onto its scene box (§9.1), in
// latent cells (x, y): Unquantized from the mask's center of mass to the
// box's center, Cells after quantization on the coarsest attention grid (what
// was applied).
type Shift struct {
	Unquantized [2]float64 `json:"unquantized_latent_cells"`
	Cells       [2]int     `json:"latent_cells"`
}

// MaskGeometry is the object's mask in its single-object run, before the shift.
type MaskGeometry struct {
	AreaCells    int        `json:"area_cells"`
	CenterOfMass [2]float64 `json:"center_of_mass_cells"` // (x, y), cell indices
}

// PhraseTokens are a phrase's token positions in a prompt (the start token is
// position 0), its tokens, and the word token (§5.3) whose attention makes the
// mask and the reference constraint.
type PhraseTokens struct {
	Prompt    string   `json:"prompt"`
	Phrase    string   `json:"phrase"`
	Positions []int    `json:"positions"`
	Tokens    []string `json:"tokens"`
	WordIndex int      `json:"word_index"`
	WordToken string   `json:"word_token"`
}

// SAAChoice is what Semantic Alignment Assessment chose (saa.json has the scores).
type SAAChoice struct {
	Chosen []int  `json:"chosen"` // 1-based indices of the candidate descriptions
	Final  string `json:"final"`
}

func boxGeometry(b Box, h, w int) BoxGeometry {
	xa, ya, xb, yb := b.raster(h, w)
	return BoxGeometry{Normalized: b, Cells: [4]int{xa, ya, xb, yb}}
}

// promptTokens are the tokens of prompt as the text encoder takes them, up to
// and including the end token.
func promptTokens(tok *clip.Tokenizer, prompt string) []string {
	ids, _ := tok.Tokenize(prompt)
	n := min(len(tok.Encode(prompt))+2, clip.MaxLength)
	return tok.Tokens(ids[:n])
}

// phraseTokens picks a phrase's tokens out of its prompt's.
func phraseTokens(prompt, phrase string, tokens []string, positions []int, word int) PhraseTokens {
	p := PhraseTokens{Prompt: prompt, Phrase: phrase, Positions: positions, WordIndex: word, WordToken: tokens[word]}
	for _, i := range positions {
		p.Tokens = append(p.Tokens, tokens[i])
	}
	return p
}

// steeredSteps are the steps with at least one steering iteration.
func steeredSteps(iterations []int) []int {
	steps := []int{}
	for i, n := range iterations {
		if n > 0 {
			steps = append(steps, i)
		}
	}
	return steps
}

// objectGeometry records object o's geometry from the values its run used:
// the mask's center of mass c and the shift sh that alignment made of it,
// and its single-object run's steering iterations.
func objectGeometry(tok *clip.Tokenizer, o *object, saa SAAResult, c massCenter, sh shift, iterations []int, h, w int) ObjectGeometry {
	dx, dy := sh.at(w, h)
	return ObjectGeometry{
		Name: o.Name, Box: boxGeometry(o.Box, h, w), SOBox: boxGeometry(o.SOBox, h, w),
		Shift:        Shift{Unquantized: [2]float64{sh.exact[0] * float64(w), sh.exact[1] * float64(h)}, Cells: [2]int{dx, dy}},
		Mask:         MaskGeometry{AreaCells: c.area, CenterOfMass: c.cells()},
		SOPrompt:     phraseTokens(o.Prompt, o.Name, promptTokens(tok, o.Prompt), o.Tokens, o.Word),
		SAA:          SAAChoice{Chosen: saa.Chosen, Final: saa.Final},
		SteeredSteps: steeredSteps(iterations),
	}
}

// overallGeometry adds to g what the overall prompt and run decided.
func overallGeometry(g *Geometry, tok *clip.Tokenizer, s *spec, frozen int, iterations []int) {
	g.FrozenSteps, g.OverallSteeredSteps = frozen, steeredSteps(iterations)
	g.OverallTokens = promptTokens(tok, s.Overall)
	for _, p := range s.Phrases {
		for _, j := range p.Objects {
			g.Objects[j].OverallPrompt = phraseTokens(s.Overall, p.Text, g.OverallTokens, p.Tokens, p.Word)
		}
	}
}
