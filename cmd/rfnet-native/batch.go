package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
)

// maxBatchCount caps --batch-count: each image is a whole generation, so a
// larger count is a typo (the benchmark, not generate, runs thousands).
const maxBatchCount = 1000

// checkBatch validates --batch-count and the seeds it implies: image i of a
// batch uses seed first+i, which must not wrap around.
func checkBatch(count int, first uint64) error {
	if count < 1 || count > maxBatchCount {
		return fmt.Errorf("--batch-count %d: want 1 to %d", count, maxBatchCount)
	}
	if first > math.MaxUint64-uint64(count-1) {
		return fmt.Errorf("--batch-count %d from seed %d: the last seed would pass %d", count, first, uint64(math.MaxUint64))
	}
	return nil
}

// batchFile is where image i (seed seed) of a batch of count goes: path
// itself for a single image, else path with "-<seed>" before its extension
// (out.png: out-42.png, out-43.png, ...), so each image's seed is in its name.
func batchFile(path string, count int, seed uint64) string {
	if count == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), seed, ext)
}

// batchDir is rfnet's out-dir for image i (seed seed): the folder itself for
// a single image, else one subfolder per seed (seed-42/, seed-43/, ...), each
// a complete run's out-dir.
func batchDir(dir string, count int, seed uint64) string {
	if count == 1 {
		return dir
	}
	return filepath.Join(dir, fmt.Sprintf("seed-%d", seed))
}

// batchDescription labels the progress bar with the image being made.
func batchDescription(what string, i, count int) string {
	if count == 1 {
		return what
	}
	return fmt.Sprintf("%s, image %d/%d", what, i+1, count)
}
