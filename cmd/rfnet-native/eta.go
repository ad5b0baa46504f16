package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// slowRunThreshold: a run whose estimate stays under it gets no advice.
const slowRunThreshold = 2 * time.Minute

// firstStepNotice is said once, after the first denoising step: what it took
// and what the whole run will, with the faster options when that is long (a
// newcomer on a machine without a GPU otherwise waits hours for the README's
// command without knowing why). Progress bars show the rest.
type firstStepNotice struct {
	w       io.Writer
	start   time.Time
	steps   int    // denoising steps in the whole run
	device  string // the backend's name
	cuda    bool   // the binary has the CUDA backend
	width   int
	said    bool
	timeNow func() time.Time
}

func newFirstStepNotice(w io.Writer, steps, width int, device string, cuda bool) *firstStepNotice {
	return &firstStepNotice{w: w, start: time.Now(), steps: steps, device: device, cuda: cuda, width: width, timeNow: time.Now}
}

// step is called after every step; only the first says anything.
func (n *firstStepNotice) step() {
	if n == nil || n.said {
		return
	}
	n.said = true
	took := n.timeNow().Sub(n.start)
	total := took * time.Duration(n.steps)
	if total < slowRunThreshold {
		return
	}
	fmt.Fprintf(n.w, "rfnet-native: the first step took %s on %s: the %d steps will take about %s.\n", took.Round(100*time.Millisecond), n.device, n.steps, roundDuration(total))
	var faster []string
	if !strings.HasPrefix(n.device, "cuda") {
		if n.cuda {
			faster = append(faster, "a machine with an NVIDIA GPU (this binary has the CUDA backend)")
		} else {
			faster = append(faster, "the CUDA build (`make cuda`) on a machine with an NVIDIA GPU")
		}
	}
	if n.width > 256 {
		faster = append(faster, fmt.Sprintf("a smaller --width/--height (%d takes about a quarter of the time)", n.width/2))
	}
	faster = append(faster, "fewer --steps (time grows with them)")
	fmt.Fprintf(n.w, "rfnet-native: faster: %s; --quiet hides this.\n", strings.Join(faster, ", "))
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d > time.Hour:
		return d.Round(time.Minute)
	case d > time.Minute:
		return d.Round(10 * time.Second)
	}
	return d.Round(time.Second)
}
