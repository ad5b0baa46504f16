package pipeline

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// What WritePNG writes, tEXt for Latin-1 and iTXt beyond it, reads back as it was.
func TestReadPNGTextReadsWhatWritePNGWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.png")
	want := map[string]string{"parameters": "a cat, \"Tom\": café\nSteps: 1", "unicode": "東京 🐭", "empty": ""}
	if err := WritePNG(path, image.NewRGBA(image.Rect(0, 0, 2, 2)), want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPNGText(path)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ReadPNGText = %q, %v; want %q", got, err, want)
	}
}

// pngChunk is one chunk: length, type, data, CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

func deflate(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// withChunks is a 1×1 PNG with chunks after its header.
func withChunks(t *testing.T, chunks ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	data := b.Bytes()
	return append(append(data[:ihdrEnd:ihdrEnd], bytes.Join(chunks, nil)...), data[ihdrEnd:]...)
}

// The chunks other tools write: zTXt, compressed iTXt, chunks after the image
// data; the first of a key wins.
func TestReadPNGTextOtherWriters(t *testing.T) {
	data := withChunks(t,
		pngChunk("zTXt", append([]byte("parameters\x00\x00"), deflate("a prompt\nSteps: 20, Sampler: Euler a, CFG scale: 7")...)),
		pngChunk("iTXt", append([]byte("workflow\x00\x01\x00en\x00Workflow\x00"), deflate(`{"nodes": ["東京"]}`)...)),
		pngChunk("tEXt", []byte("prompt\x00caf\xe9")),
		pngChunk("tEXt", []byte("parameters\x00second")))
	path := filepath.Join(t.TempDir(), "other.png")
	os.WriteFile(path, data, 0o644)
	got, err := ReadPNGText(path)
	want := map[string]string{"parameters": "a prompt\nSteps: 20, Sampler: Euler a, CFG scale: 7", "workflow": `{"nodes": ["東京"]}`, "prompt": "café"}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ReadPNGText = %q, %v; want %q", got, err, want)
	}
}

// Not a PNG, cut short, damaged: an error that names the file and says which.
func TestReadPNGTextErrors(t *testing.T) {
	dir := t.TempDir()
	good := withChunks(t, pngChunk("tEXt", []byte("parameters\x00p")))
	badCRC := withChunks(t, pngChunk("tEXt", []byte("parameters\x00p")))
	badCRC[8+25+4+4+len("parameters\x00p")] ^= 0xff
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "is not a PNG file"},
		{"text", []byte("parameters: a prompt, and more text than a signature"), "is not a PNG file"},
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), "is not a PNG file"},
		{"signature only", []byte(pngSignature), "is cut short: it ends before its IEND chunk"},
		{"cut in the text", good[:8+25+10], "is cut short: it ends inside a tEXt chunk"},
		{"cut in the image", good[:len(good)-20], "is cut short: it ends inside its IDAT chunk"},
		{"no IEND", good[:len(good)-12], "is cut short: it ends before its IEND chunk"},
		{"bad CRC", badCRC, "a tEXt chunk's CRC does not match its data"},
		{"bad compression", withChunks(t, pngChunk("zTXt", []byte("parameters\x00\x00not zlib"))), `the zTXt chunk "parameters": damaged compressed text`},
		{"no NUL", withChunks(t, pngChunk("tEXt", []byte("parameters"))), "a tEXt chunk without the NUL after its key"},
	} {
		path := filepath.Join(dir, c.name+".png")
		os.WriteFile(path, c.data, 0o644)
		_, err := ReadPNGText(path)
		wantErr(t, err, path, c.want)
	}
	_, err := ReadPNGText(filepath.Join(dir, "missing.png"))
	wantErr(t, err, "missing.png")
}
