// Package serve is the HTTP server of `rfnet-native serve`: the model loaded
// once behind the APIs of docs/serve-api.md (OpenAI Images, AUTOMATIC1111's
// txt2img and friends, RFNet plans and jobs, job files and events, health and
// metrics).
//
// It owns the HTTP side: routing, authentication, body limits, strict
// decoding and field-by-field validation of requests, the error shape, the
// answers of each API, server-sent events, metrics, and the two Works ("sd"
// and "rfnet") that turn a validated request into files in a job's folder.
// It leaves the queue, the job store, events and recovery after a restart to
// serve/jobs, the page at / to serve/web, and the generation itself to
// pipeline and pipeline/rfnet, whose own checks (pipeline.CheckSide, the
// scheduler names, rfnet.Config.Validate, llm.Plan.Check) it calls rather
// than repeats, so that each rule lives in one place.
//
// Routing is the standard library's: net/http's ServeMux with method and
// wildcard patterns ("POST /v1/images/generations",
// "GET /v1/jobs/{id}/files/{name...}") is the well-kept router here; the
// server only turns its plain-text 404 and 405 answers into the API's JSON
// errors (405 keeps the mux's Allow header).
//
// Words: a request is what a client sent; a job is its generation in the
// queue (kind "sd" or "rfnet"); a Work runs a job; the API names which of
// the APIs submitted it (openai, a1111, rfnet).
package serve
