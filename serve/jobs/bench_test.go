package jobs

import (
	"context"
	"testing"
)

// BenchmarkJobOverhead is what the queue adds to a job that writes one file: the store's
// writes and syncs, the events, the hand-off to a worker.
func BenchmarkJobOverhead(b *testing.B) {
	q, err := Open(b.TempDir(), Options{Length: 1, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Shutdown(context.Background())
	for b.Loop() {
		j, err := q.Submit("bench", nil, 0, quick)
		if err != nil {
			b.Fatal(err)
		}
		if j, err = q.Wait(context.Background(), j.ID); err != nil || j.State != Succeeded {
			b.Fatalf("job %s: %v %q", j.State, err, j.Error)
		}
	}
}

// BenchmarkProgress is one Reporter.Progress call of a running job with one subscriber.
func BenchmarkProgress(b *testing.B) {
	q, err := Open(b.TempDir(), Options{Length: 1, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Shutdown(context.Background())
	reporters := make(chan Reporter)
	release := make(chan struct{})
	j, _ := q.Submit("bench", nil, 0, func(ctx context.Context, dir string, r Reporter) (any, error) {
		reporters <- r
		<-release
		return nil, nil
	})
	_, live, stop, _ := q.Events(j.ID, 0)
	defer stop()
	go func() {
		for range live {
		}
	}()
	r := <-reporters
	step := 0
	for b.Loop() {
		step++
		r.Progress(Progress{Stage: "denoise", Step: step, Steps: b.N})
	}
	close(release)
	q.Wait(context.Background(), j.ID)
}
