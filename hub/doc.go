// Package hub resolves --weights names that are not local paths: Hugging Face
// Hub repositories ("org/name", "org/name@revision"), single files
// ("hf://org/name/path/file.safetensors") and short aliases (sd15, sd21-base,
// ...). It reads and fills the cache that huggingface_hub and diffusers use
// ($HF_HOME/hub: models--org--name/{blobs,refs,snapshots}), so the Python tools
// and rfnet-native share downloads. Downloads are resumable, verified (size,
// and the SHA-256 the Hub reports for large files) and moved into place
// atomically; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT and
// HF_HUB_DOWNLOAD_TIMEOUT work as in the Python tools, and so does the fallback
// to the cached snapshot when the Hub cannot be reached. Only what the
// pipeline reads is fetched, never pickles.
package hub
