package rfnet

import (
	"math"
	"strings"

	"github.com/rfnet/rfnet-native/tensor"
)

// SAAResult records the Semantic Alignment Assessment of one object.
type SAAResult struct {
	Object     string   `json:"object"`
	Candidates []string `json:"candidates"`
	// Scores are sim(d1,d2), sim(d2,d3), sim(d1,d3), in that order (per-object rule).
	Scores []float64 `json:"scores,omitempty"`
	Chosen []int     `json:"chosen"` // 1-based indices of the candidates joined
	Final  string    `json:"final"`
	// CrossScore is the score of the chosen combination (cross-object rule).
	CrossScore *float64 `json:"cross_score,omitempty"`
}

// encoder gives the text encoder's last hidden state [77, D] of a text.
type encoder func(text string) []float64

// sim is the mean over the 77 positions of the cosine similarity of two
// encodings (§4.1): padding positions included, as the reference does.
func sim(a, b []float64, positions int) float64 {
	d := len(a) / positions
	total := 0.0
	for p := 0; p < positions; p++ {
		x, y := a[p*d:(p+1)*d], b[p*d:(p+1)*d]
		var dot, nx, ny float64
		for i := range x {
			dot += x[i] * y[i]
			nx += x[i] * x[i]
			ny += y[i] * y[i]
		}
		// torch.cosine_similarity clamps each norm at eps = 1e-8.
		total += dot / (math.Max(math.Sqrt(nx), 1e-8) * math.Max(math.Sqrt(ny), 1e-8))
	}
	return total / float64(positions)
}

// candidates returns an object's three candidate descriptions (main, alternative 1, 2).
func candidates(o object) []string {
	c := make([]string, 3)
	for i := range c {
		if i < len(o.Descs) {
			c[i] = o.Descs[i]
		} else if len(o.Descs) > 0 {
			c[i] = o.Descs[0]
		}
	}
	return c
}

// runSAA sets every object's Final description. With SAA off it is the main
// description; the per-object rule joins the most similar pair of an object's
// three candidates ("d1, d2", "d2, d3" or "d1, d3"; the first wins a tie); the
// cross-object rule picks one candidate per object so that the mean similarity
// across objects is highest.
func runSAA(objs []object, c Config, enc encoder) []SAAResult {
	results := make([]SAAResult, len(objs))
	for j := range objs {
		results[j] = SAAResult{Object: objs[j].Name, Candidates: candidates(objs[j])}
	}
	if !c.SAA {
		for j := range objs {
			objs[j].Final = results[j].Candidates[0]
			results[j].Chosen, results[j].Final = []int{1}, objs[j].Final
		}
		return results
	}
	cache := map[string][]float64{}
	embed := func(s string) []float64 {
		if _, ok := cache[s]; !ok {
			cache[s] = enc(s)
		}
		return cache[s]
	}
	if c.SAACrossObject && len(objs) > 1 {
		crossObjectSAA(objs, results, embed)
		return results
	}
	pairs := [][2]int{{0, 1}, {1, 2}, {0, 2}}
	for j := range objs {
		cand := results[j].Candidates
		best := 0
		for k, p := range pairs {
			s := sim(embed(cand[p[0]]), embed(cand[p[1]]), 77)
			results[j].Scores = append(results[j].Scores, s)
			if s > results[j].Scores[best] {
				best = k
			}
		}
		p := pairs[best]
		objs[j].Final = joinDistinct(cand[p[0]], cand[p[1]])
		results[j].Chosen, results[j].Final = []int{p[0] + 1, p[1] + 1}, objs[j].Final
	}
	return results
}

// joinDistinct joins the pair with ", ", leaving out empty and repeated
// strings (candidates filled in for missing alternatives are copies).
func joinDistinct(a, b string) string {
	switch {
	case b == "" || b == a:
		return a
	case a == "":
		return b
	}
	return strings.Join([]string{a, b}, ", ")
}

// crossObjectSAA enumerates the 3^K choices of one candidate per object.
func crossObjectSAA(objs []object, results []SAAResult, embed func(string) []float64) {
	k := len(objs)
	choice := make([]int, k)
	best, bestScore := make([]int, k), math.Inf(-1)
	for {
		total, n := 0.0, 0
		for a := 0; a < k; a++ {
			for b := a + 1; b < k; b++ {
				total += sim(embed(results[a].Candidates[choice[a]]), embed(results[b].Candidates[choice[b]]), 77)
				n++
			}
		}
		if s := total / float64(n); s > bestScore {
			bestScore = s
			copy(best, choice)
		}
		i := 0
		for i < k && choice[i] == 2 {
			choice[i] = 0
			i++
		}
		if i == k {
			break
		}
		choice[i]++
	}
	for j := range objs {
		objs[j].Final = results[j].Candidates[best[j]]
		s := bestScore
		results[j].Chosen, results[j].Final, results[j].CrossScore = []int{best[j] + 1}, objs[j].Final, &s
	}
}

// textEncoder returns the encoder SAA uses: the pipeline's text encoder, last
// hidden state, tokens padded to 77 as the model's family pads them.
func textEncoder(encode func(string) (*tensor.Tensor, int)) encoder {
	return func(text string) []float64 {
		e, _ := encode(text)
		return e.Float64s()
	}
}
