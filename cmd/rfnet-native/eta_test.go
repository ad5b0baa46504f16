package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// After the first step of a long run: the step's time, the estimate, the
// faster options; once. A short run says nothing.
func TestFirstStepNotice(t *testing.T) {
	var out bytes.Buffer
	n := newFirstStepNotice(&out, 50, 512, "cpu (2 threads)", false)
	n.timeNow = func() time.Time { return n.start.Add(40 * time.Second) }
	n.step()
	n.step()
	got := out.String()
	for _, want := range []string{"the first step took 40s on cpu (2 threads)", "50 steps will take about 33m20s", "make cuda", "--width/--height (256", "fewer --steps", "--quiet"} {
		if !strings.Contains(got, want) {
			t.Errorf("notice %q lacks %q", got, want)
		}
	}
	if strings.Count(got, "first step") != 1 {
		t.Errorf("said more than once: %q", got)
	}
	out.Reset()
	n = newFirstStepNotice(&out, 50, 512, "cuda:0 NVIDIA H100", true)
	n.timeNow = func() time.Time { return n.start.Add(20 * time.Millisecond) }
	n.step()
	if out.Len() != 0 {
		t.Errorf("a short run got advice: %q", out.String())
	}
	var nilNotice *firstStepNotice
	nilNotice.step() // --quiet
}
