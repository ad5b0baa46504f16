// Package rfbench runs the Realistic-Fantasy benchmark: a prompt set in the
// paper's two areas and nine subcategories (prompts.jsonl, written for this
// project; a user's own JSONL or CSV file works too), one image per (prompt,
// method, seed), sharded deterministically over machines, resumable (finished
// images are skipped, every file is written atomically), with plans cached and
// reused across methods and seeds. The judges (package judge) and the HTML
// report (package report) read what it writes.
//
// A run folder holds bench.json (what was run), plans/<id>.json, and
// images/<method>/<id>-s<seed>.png with a .json metadata file (the sidecar)
// beside each, and, when bench keeps artifacts, an RFNet item's plan, masks
// and trace in images/<method>/<id>-s<seed>/ (see artifacts.go). The
// sidecar is written last and records the image's size and
// SHA-256; Check is the one place that decides whether an item is finished
// and intact, and Differences the one place that decides whether two runs'
// settings agree. While bench runs, locks/ holds one file per process, an
// item being made has a .claim file beside its image (see lock.go), and
// bench.json.lock is held for the moment bench.json is updated (see Start).
// Every file read from a run folder is opened by files.go, which refuses
// named pipes, sockets and devices unopened and JSON files past MaxJSON, so
// that whatever sits in a shared folder makes an item broken, not the run
// hang.
package rfbench
