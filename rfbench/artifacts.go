package rfbench

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rfnet/rfnet-native/internal/atomicfile"
	"github.com/rfnet/rfnet-native/internal/regular"
	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/pipeline/infotext"
	"github.com/rfnet/rfnet-native/pipeline/rfnet"
)

// An RFNet item made with Runner.KeepArtifacts keeps what rfnet.WriteArtifacts
// writes for a run (the plan, the masks, the trace, and whatever else that
// function writes) in a folder beside its image, images/<method>/<id>-s<seed>/.
// Plain SD items keep nothing: they have no plan, masks or trace, and their
// sidecar records all there is of them.
//
// The sidecar lists every file of the folder with its size and SHA-256, so
// an item's artifacts are complete or absent, never half: the folder is
// removed before an item is made (or merged) again, filled before the
// image and the sidecar are written, and Check fails an item whose sidecar
// lists a file that is missing or has another size. Merge copies the files
// with the item, checking each against its hash.

// ArtifactFile is one kept file, as the sidecar records it.
type ArtifactFile struct {
	Path   string `json:"path"` // relative to the run folder, with slashes
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// artifactsDir is the folder of the item key's artifacts, relative to the
// run folder, with slashes.
func artifactsDir(key string) string { return "images/" + key }

// isArtifactsDir reports whether the folder rel (relative to the run folder,
// with slashes) is where an item keeps its artifacts: a folder inside
// images/<method>/, where every item's image and sidecar are files. Walks
// over images/ do not enter one: its files belong to the item beside it.
func isArtifactsDir(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 3 && parts[0] == "images"
}

// removeArtifacts removes the item key's artifacts folder in run, whatever
// it holds: an earlier image's files, or part of them.
func removeArtifacts(run, key string) error {
	return os.RemoveAll(filepath.Join(run, filepath.FromSlash(artifactsDir(key))))
}

// keepArtifacts runs RFNet on the item's plan with its artifacts written into the
// item's folder, and lists the files written there for the sidecar.
func (r *Runner) keepArtifacts(it Item, plan *llm.Plan, opts rfnet.Options, ckpt infotext.Checkpoint) (*rfnet.Result, []ArtifactFile, error) {
	rel := artifactsDir(it.Key())
	dir := filepath.Join(r.Out, filepath.FromSlash(rel))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	trace, err := rfnet.OpenTrace(filepath.Join(dir, rfnet.PartialTrace))
	if err != nil {
		return nil, nil, err
	}
	defer trace.Close()
	opts.Trace = trace.Add
	res, err := rfnet.Run(r.Model, plan, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := rfnet.WriteArtifacts(dir, res, opts.Config, r.Info, ckpt, trace); err != nil {
		return nil, nil, err
	}
	files, err := listArtifacts(r.Out, rel)
	return res, files, err
}

// listArtifacts lists the files under rel in run, with their sizes and
// hashes, in lexical order.
func listArtifacts(run, rel string) ([]ArtifactFile, error) {
	var files []ArtifactFile
	err := filepath.WalkDir(filepath.Join(run, filepath.FromSlash(rel)), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, err := filepath.Rel(run, p)
		if err != nil {
			return err
		}
		f := ArtifactFile{Path: filepath.ToSlash(name)}
		if f.Bytes, f.SHA256, err = hashFile(p); err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// checkArtifacts says what is wrong with the artifacts the sidecar m (at
// sidecar) lists, if anything: a path outside the item's folder, or a file
// that is missing, not regular, or of another size than listed. Each error
// starts with the file at fault. The files are not hashed (Check runs on
// every item of every resume); Merge hashes them as it copies.
func checkArtifacts(run, sidecar string, m Meta) error {
	dir := artifactsDir(metaKey(m)) + "/"
	for _, f := range m.Artifacts {
		switch {
		case path.Clean(f.Path) != f.Path || !strings.HasPrefix(f.Path, dir):
			return fmt.Errorf("%s: lists the kept file %q, outside the item's folder %s", sidecar, f.Path, dir)
		case !isSHA256(f.SHA256):
			return fmt.Errorf("%s: lists %s with the SHA-256 %q, which is not 64 hex digits", sidecar, f.Path, f.SHA256)
		}
		fi, err := os.Lstat(filepath.Join(run, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not wrapped: the item was finished once, so it is broken, not new.
			return fmt.Errorf("%s: missing, sidecar lists it with %d bytes", f.Path, f.Bytes)
		case err != nil:
			return fmt.Errorf("%s: %v", f.Path, err)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s: a %s, not a regular file", f.Path, regular.Kind(fi.Mode()))
		case fi.Size() != f.Bytes:
			return fmt.Errorf("%s: size %d, sidecar says %d", f.Path, fi.Size(), f.Bytes)
		}
	}
	return nil
}

// copyVerified copies the regular file rel (with slashes) from dir to out,
// checking on the way that it still has the size and SHA-256 given.
func copyVerified(dir, out, rel string, size int64, sum string) error {
	src, err := regular.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer src.Close()
	dst := filepath.Join(out, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(dst, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), src)
		if err != nil {
			return err
		}
		if n != size || hex.EncodeToString(h.Sum(nil)) != sum {
			return fmt.Errorf("%s: not the file its sidecar records (changed since, or while it was copied)", src.Name())
		}
		return nil
	})
}

// copyItem copies the item m, which passed Check in dir, into out: its
// artifacts (into a folder emptied first), then its image, then its sidecar
// raw, which marks it finished.
func copyItem(dir, out, sidecar string, m Meta, raw []byte) error {
	if err := removeArtifacts(out, metaKey(m)); err != nil {
		return err
	}
	for _, f := range m.Artifacts {
		if err := copyVerified(dir, out, f.Path, f.Bytes, f.SHA256); err != nil {
			return err
		}
	}
	if err := copyVerified(dir, out, m.Image, m.ImageBytes, m.ImageSHA256); err != nil {
		return err
	}
	return writeRel(out, sidecar, raw)
}
