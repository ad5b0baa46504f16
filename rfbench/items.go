package rfbench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

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
// prompt index + 6789·repeat (rfnet.Config.WithSeed derives the foreground
// seeds from it).
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

// MaxShards bounds n in "i/n": a shard is one machine's or one GPU's part,
// and past ten thousand of them the number is a typo (with the default
// prompt set and methods, most shards would get no item at all).
const MaxShards = 10000

// ShardError is a shard ParseShard refused: Shard is the text, Err says why.
type ShardError struct {
	Shard string
	Err   error
}

func (e *ShardError) Error() string { return fmt.Sprintf("rfbench: shard %q: %v", e.Shard, e.Err) }

func (e *ShardError) Unwrap() error { return e.Err }

// ParseShard reads "i/n", two whole numbers in decimal with 0 <= i < n <=
// MaxShards.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := parseWhole(a)
	n, err2 := parseWhole(b)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return Shard{}, &ShardError{s, errors.New("want i/n, two whole numbers with 0 <= i < n")}
	case n < 1 || n > MaxShards:
		return Shard{}, &ShardError{s, fmt.Errorf("%d shards, want 1 to %d", n, MaxShards)}
	case i >= n:
		return Shard{}, &ShardError{s, fmt.Errorf("shard %d of %d, want 0 to %d (shards are numbered from 0)", i, n, n-1)}
	}
	return Shard{i, n}, nil
}

// parseWhole reads a number of decimal digits alone: no sign, no spaces.
func parseWhole(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return strconv.Atoi(s) // fails past the largest int
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
