// Package weights reads and writes .safetensors files. A File is memory-mapped:
// opening it parses and checks the header only, and a tensor's bytes are read
// (and converted to the dtype asked for) when a loader asks for that tensor.
//
// The header is parsed by github.com/nlpodyssey/safetensors. Before and after
// it, File checks what the library reports only tersely (a short file, an
// oversized header, offsets that overlap or run past the end) so that the
// error names the file, the tensor and the problem. Malformed input is an
// error, never a panic (FuzzParse).
package weights
