// Package timeline records where a run's time went as nested spans and writes
// them as a Chrome trace-event file (the "Trace Event Format" that
// ui.perfetto.dev and chrome://tracing open): one complete ("X") event per
// span, with its arguments.
//
// A nil *Recorder records nothing, and its spans are nil *Span whose methods
// do nothing, so code under measurement calls Begin and End unconditionally
// and a run without --profile-out pays a nil check per span (and the boxing
// of the span's arguments). Spans begun on the same track must end in the
// reverse order (defer, or End before the next Begin at the same depth): that
// is what makes each track's events nest.
package timeline
