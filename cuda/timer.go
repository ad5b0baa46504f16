//go:build cuda

package cuda

// #include "driver.h"
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Elapsed runs f and returns the device time between events recorded on the
// stream before and after it, in milliseconds (what bench-engine reports:
// the GPU's time, not the host's launch overhead around it), and the first
// error f or the device hit.
func (g *Backend) Elapsed(f func() error) (float64, error) {
	var start, end unsafe.Pointer
	if r := C.rf_event_create(&start); r != 0 {
		return 0, driverError("create event", r)
	}
	defer C.rf_event_destroy(start)
	if r := C.rf_event_create(&end); r != 0 {
		return 0, driverError("create event", r)
	}
	defer C.rf_event_destroy(end)
	if r := C.rf_event_record(start); r != 0 {
		return 0, driverError("record event", r)
	}
	ferr := f()
	if r := C.rf_event_record(end); r != 0 {
		return 0, driverError("record event", r)
	}
	var ms C.float
	var err error
	if r := C.rf_event_elapsed(&ms, start, end); r != 0 {
		err = driverError("event time", r)
	}
	if ferr != nil {
		return 0, ferr
	}
	if err := errors.Join(err, g.Sync()); err != nil {
		return 0, fmt.Errorf("cuda: timed call: %w", err)
	}
	return float64(ms), nil
}
