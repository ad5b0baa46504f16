package serve

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"io"
	"net/http"
	"testing"
)

// OpenAI's Images API makes n images, as base64 or as URLs that serve the
// same PNG files.
func TestOpenAIImages(t *testing.T) {
	ts := newTestServer(t, Options{})
	req := map[string]any{"prompt": "a red apple", "n": 2, "size": "64x64", "steps": 2, "seed": 7, "model": "dall-e-3"}
	code, body, _ := ts.do("POST", "/v1/images/generations", req)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	b64 := decodeAs[struct {
		Created int64 `json:"created"`
		Data    []struct {
			B64JSON string `json:"b64_json"`
		} `json:"data"`
	}](t, body)
	if len(b64.Data) != 2 || b64.Created == 0 {
		t.Fatalf("answer %.300s", body)
	}
	var pngs [][]byte
	for _, d := range b64.Data {
		raw, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
			t.Fatalf("image: %v %v", err, img.Bounds())
		}
		pngs = append(pngs, raw)
	}
	if bytes.Equal(pngs[0], pngs[1]) {
		t.Error("images with seeds 7 and 8 are the same")
	}

	req["response_format"] = "url"
	code, body, _ = ts.do("POST", "/v1/images/generations", req)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	urls := decodeAs[struct {
		Data []struct {
			URL string `json:"url"`
		} `json:"data"`
	}](t, body)
	if len(urls.Data) != 2 {
		t.Fatalf("answer %s", body)
	}
	for i, d := range urls.Data {
		resp, err := http.Get(d.URL)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s: %d %s %s", d.URL, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
		}
		// The same seeds make the same pictures (the text chunk holds the same parameters too).
		if !bytes.Equal(raw, pngs[i]) {
			t.Errorf("image %d by url differs from the one in base64", i)
		}
	}
}
