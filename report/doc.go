// Package report turns a benchmark run folder into one self-contained HTML
// file: the paper-style table (per method and judge: Realistic & Analytical,
// Creativity & Imagination, and the pooled average, with counts), the
// per-subcategory breakdown, and a grid of the images with the methods side by
// side per prompt and seed, the plan's boxes drawn over RFNet's images, and
// the judges' explanations. Images are embedded as JPEG thumbnails, so the
// file opens offline in any browser.
package report
