package randckpt

import (
	"bytes"
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

// The embedded sam-vit-base shapes are the copy of the SAM tests' manifest
// (testdata/sam/sam-vit-base-manifest.json): one list of names and shapes.
func TestSAMShapesMatchTestdata(t *testing.T) {
	want, err := os.ReadFile(fixtures.Path("sam", "sam-vit-base-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifests.ReadFile("manifests/sam-vit-base-shapes.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("manifests/sam-vit-base-shapes.json differs from testdata/sam/sam-vit-base-manifest.json: copy it again")
	}
	m, err := ReadShapes("sam-vit-base", "F16")
	if err != nil {
		t.Fatal(err)
	}
	if w := m["mask_decoder.iou_prediction_head.proj_in.weight"]; w.DType != "F16" || len(w.Shape) != 2 || w.Shape[0] != 256 {
		t.Fatalf("proj_in.weight = %+v", w)
	}
}
