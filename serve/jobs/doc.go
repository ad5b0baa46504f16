// Package jobs is the job queue and store of `rfnet-native serve`: one bounded FIFO
// queue, a fixed number of workers, per-job deadlines and cancellation, and a store on
// disk that survives restarts and crashes. It knows nothing of HTTP or of models: a job
// is a Work (a Go func) plus the JSON request it came from; package serve turns API
// requests into Works and answers from the Jobs this package keeps.
//
// Store layout, under the folder given to Open:
//
//	jobs/<id>/job.json      the Job, rewritten atomically (internal/atomicfile) on every
//	                        state change; progress is written at most once a second
//	jobs/<id>/events.jsonl  the job's events, one JSON object a line, appended
//	jobs/<id>/files/        the Work's folder; its files become Job.Files
//	lock                    held (flock) while a queue has the store open: a second
//	                        queue on the same folder is refused
//
// A job is written "succeeded" only after every file under files/ and every folder above
// them has been synced, so a finished job on disk is always whole. A Work that fails
// leaves nothing: its folder is removed.
//
// Recovery (Open on a folder a previous queue used, also after kill -9):
//   - finished jobs (succeeded, failed, canceled) are served as they are;
//   - jobs that were running are marked failed with the error "interrupted: the server
//     stopped while this job ran" and their partial files are removed: a job that brought
//     the server down would otherwise bring it down again at every start;
//   - jobs that were queued are queued again in the order they were created, through
//     Options.Rebuild; one whose Rebuild fails, or whose deadline has passed, is marked
//     failed with the reason (without a Rebuild they all are);
//   - a job folder whose job.json cannot be read is skipped with a log line;
//   - a torn last line of an events file (a crash in the middle of an append) is ignored
//     when reading and cut off before the next append.
//
// Events are numbered 1, 2, ... per job. The first is a "state" event with state
// "queued", every change of state is one, and the last is always a "state" event with
// the final state (and "error"). Subscribers get a buffered channel; one that falls
// behind by more than its buffer is dropped (its channel closed) rather than slowing the
// worker, and may resubscribe from the last Seq it saw.
//
// Memory: the queue keeps every job's metadata (the Job) in memory to answer Get and
// List; events are kept only on disk and read when asked for.
package jobs
