package rfbench

import (
	"fmt"
	"strconv"
	"strings"
)

// Methods are the generation methods a benchmark compares: plain Stable
// Diffusion, RFNet, and the paper's ablations.
var Methods = []string{"sd", "rfnet", "rfnet-no-saa", "rfnet-no-guidance", "rfnet-no-suppression", "rfnet-none"}

// ParseMethods checks a comma-separated method list.
func ParseMethods(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		ok := false
		for _, k := range Methods {
			ok = ok || k == m
		}
		if !ok {
			return nil, fmt.Errorf("rfbench: unknown method %q (choose from %s)", m, strings.Join(Methods, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// Item is one image to generate.
type Item struct {
	Prompt Prompt
	Index  int // the prompt's position in the prompt set (it enters the seed)
	Method string
	Seed   int // the repeat, 0..seeds-1
}

// Key names the item's files: <method>/<id>-s<seed>.
func (it Item) Key() string { return it.Method + "/" + it.Prompt.ID + "-s" + strconv.Itoa(it.Seed) }

// BgSeed is the noise seed, as the reference's batch script computes it:
// prompt index + 6789·repeat. The foreground seeds start 123456789 higher.
func (it Item) BgSeed() uint64 { return uint64(it.Index + 6789*it.Seed) }

// Items lists every (prompt, method, seed), prompts outermost, in a fixed order.
func Items(prompts []Prompt, methods []string, seeds int) []Item {
	var out []Item
	for i, p := range prompts {
		for s := 0; s < seeds; s++ {
			for _, m := range methods {
				out = append(out, Item{Prompt: p, Index: i, Method: m, Seed: s})
			}
		}
	}
	return out
}

// Shard is the part i (0-based) of n of a run.
type Shard struct{ I, N int }

// ParseShard reads "i/n".
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("rfbench: --shard %q: want i/n with 0 <= i < n", s)
	}
	return Shard{i, n}, nil
}

// Select keeps the items of this shard: every n-th item starting at i, so the
// shards partition the run and each gets a mix of prompts and methods.
func (s Shard) Select(items []Item) []Item {
	if s.N <= 1 {
		return items
	}
	var out []Item
	for k, it := range items {
		if k%s.N == s.I {
			out = append(out, it)
		}
	}
	return out
}
