// Package llm is RFNet's stage 1: it asks a language model (any OpenAI-compatible
// endpoint, through github.com/sashabaranov/go-openai) to plan a scene: objects
// with boxes on a 512×512 canvas, a description per object with two
// alternatives, a background prompt and a negative prompt. Replies are untrusted
// input: they are parsed (JSON, or the paper's labelled text format pasted from a
// chat window) into a Plan, checked and repaired the way the reference does
// (filter_boxes), and any unusable part is an error that quotes it.
//
// A Plan is also the file format people edit by hand (plan.json, Version 1).
package llm
