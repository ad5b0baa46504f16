package rfnet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfnet/rfnet-native/tensor"
)

// A run canceled in the middle of an object's loop stops there with an error
// that wraps context.Canceled and takes no further step.
func TestRunStopsWhenCanceled(t *testing.T) {
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []string
	_, err := Run(m, testPlan(), Options{Config: testConfig(), Context: ctx, Progress: func(stage string, object, step, total int) {
		seen = append(seen, stage)
		if len(seen) == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || len(seen) != 3 {
		t.Fatalf("canceled after 3 steps: %d steps taken, error %v", len(seen), err)
	}
}

// RunToDir makes its out-dir (a batch's seed-<S>/ folder does not exist
// before its run): the serve API's two-image RFNet jobs failed without it.
func TestRunToDirMakesItsFolder(t *testing.T) {
	m := tinyModel(t, "tiny-sd2", tensor.Float32)
	dir := filepath.Join(t.TempDir(), "job", "seed-5")
	if _, err := RunToDir(m, testPlan(), Options{Config: testConfig()}, Output{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "image.png")); err != nil {
		t.Fatal(err)
	}
}
