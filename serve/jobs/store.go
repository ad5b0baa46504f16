package jobs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
)

// The names of a job's folder (see the package doc).
const (
	jobFile    = "job.json"
	eventsFile = "events.jsonl"
	filesDir   = "files"
)

// writeJob replaces dir/job.json with j and syncs dir, so that the rename itself
// survives a crash.
func writeJob(dir string, j Job) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("jobs: encode job %s: %w", j.ID, err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, jobFile), append(data, '\n')); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return syncDir(dir)
}

// readJob reads dir/job.json and checks what recovery relies on.
func readJob(dir string) (Job, error) {
	var j Job
	data, err := os.ReadFile(filepath.Join(dir, jobFile))
	if err != nil {
		return j, err
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return j, fmt.Errorf("%s: %w", filepath.Join(dir, jobFile), err)
	}
	switch {
	case j.ID != filepath.Base(dir):
		return j, fmt.Errorf("%s: id %q, want the folder's name", filepath.Join(dir, jobFile), j.ID)
	case !j.State.valid():
		return j, fmt.Errorf("%s: state %q, want one of %v", filepath.Join(dir, jobFile), j.State, States)
	}
	return j, nil
}

// removeTemps removes the temporary files an atomic write leaves when the process dies
// between creating and renaming them.
func removeTemps(dir string) {
	temps, _ := filepath.Glob(filepath.Join(dir, "."+jobFile+".tmp-*"))
	for _, t := range temps {
		os.Remove(t)
	}
}

// appendEvent adds one line to an events file. The file is opened per event so that a
// queue with many queued jobs holds no descriptors for them.
func appendEvent(path string, ev Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readEvents returns the events of an events file with Seq > after. A last line without
// its newline is an append cut short by a crash and is ignored, as is a line that does
// not decode; a missing file has no events.
func readEvents(path string, after int) ([]Event, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []Event
	_, err = scanEvents(f, func(ev Event) {
		if ev.Seq > after {
			events = append(events, ev)
		}
	})
	return events, err
}

// scanEvents calls each for every whole event line of r and returns the length of the
// whole lines (where a torn tail begins).
func scanEvents(r io.Reader, each func(Event)) (whole int64, err error) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return whole, nil // line, if any, is torn
		}
		if err != nil {
			return whole, err
		}
		whole += int64(len(line))
		var ev Event
		if json.Unmarshal(bytes.TrimSpace(line), &ev) == nil && ev.Seq > 0 {
			each(ev)
		}
	}
}

// repairEvents cuts a torn last line off an events file, so that the next append starts
// a line of its own, and returns the last Seq in the file.
func repairEvents(path string) (lastSeq int, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	whole, err := scanEvents(f, func(ev Event) { lastSeq = max(lastSeq, ev.Seq) })
	if err != nil {
		return 0, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > whole {
		if err := f.Truncate(whole); err != nil {
			return 0, err
		}
	}
	return lastSeq, nil
}

// syncFile flushes one file or folder to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	if err := syncFile(dir); err != nil {
		return fmt.Errorf("jobs: sync %s: %w", dir, err)
	}
	return nil
}

// collectFiles syncs every file and folder under root and returns the regular files'
// names, relative and slash-separated, sorted. Symbolic links and other special files
// are left out: File serves only what is listed.
func collectFiles(root string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		if err := syncFile(path); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: files: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// validName reports whether name may name a file of a job: relative, slash-separated,
// no "." or ".." element, no backslash (which Windows reads as a separator).
func validName(name string) bool {
	return fs.ValidPath(name) && name != "." && !strings.Contains(name, `\`)
}
