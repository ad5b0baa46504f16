package hub

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
)

// Cached reports where the cache holds every one of names (relative to dir,
// a folder of repo at revision) without touching the network: the folder of
// the snapshot it found them in.
func (c *Client) Cached(repo, revision, dir string, names []string) (string, bool) {
	snap, ok := c.snapshotDir(Ref{Repo: repo, Revision: revision})
	if !ok {
		return "", false
	}
	folder := filepath.Join(snap, filepath.FromSlash(dir))
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(folder, n)); err != nil || fi.IsDir() {
			return "", false
		}
	}
	return folder, true
}

// FetchFolder makes the files required and, where the repository has them,
// optional of folder dir of repo at revision available in the cache, and
// returns that folder of the snapshot: a tokenizer/ folder without the model
// beside it. Each file goes through Resolve (verified, resumed, the cache when
// the Hub is down, and HF_HUB_OFFLINE).
func (c *Client) FetchFolder(ctx context.Context, repo, revision, dir string, required, optional []string) (string, error) {
	var folder string
	for i, n := range append(append([]string(nil), required...), optional...) {
		ref := Ref{Repo: repo, Revision: revision, File: path.Join(dir, n)}
		files, err := c.Resolve(ctx, ref, false)
		if err != nil {
			if i >= len(required) && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrOffline)) {
				continue // optional, and not there
			}
			return "", err
		}
		folder = filepath.Join(files.Dir, filepath.FromSlash(dir))
	}
	return folder, nil
}
