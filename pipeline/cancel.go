package pipeline

import (
	"context"
	"fmt"
)

// Canceled is the one check of a generation's context, made before
// denoising step i (and, in RFNet, before each steering iteration): nil while
// ctx (may be nil) goes on, else an error naming the step that wraps
// ctx.Err(), so callers tell a cancel (context.Canceled) from a deadline
// (context.DeadlineExceeded) with errors.Is.
func Canceled(ctx context.Context, step int) error {
	if ctx == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pipeline: stopped before step %d: %w", step+1, context.Cause(ctx))
	}
	return nil
}
