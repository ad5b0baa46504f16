package rfnet

import "github.com/rfnet/rfnet-native/internal/htmlstyle"

const indexTemplateText = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>RFNet: {{.Prompt}}</title>
<style>
` + htmlstyle.CSS + `.pics td { vertical-align: top; text-align: left; }
.pics .cap { font-size: 12px; color: #555; max-width: 256px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.tokens span { display: inline-block; border: 1px solid #ccc; margin: 2px; padding: 1px 4px; font: 12px monospace; }
.tokens sub { color: #888; } .tokens .word { font-weight: 700; text-decoration: underline; }
img.strip { max-width: 100%; }
</style></head><body>
<h1>{{.Prompt}}</h1>
<p>{{.Objects}} objects; {{.Steps}} steps at {{.Width}}×{{.Height}}; the overall run keeps the composition in the frozen region F for its first {{.Geometry.FrozenSteps}} steps and steered at steps {{ranges .Geometry.OverallSteeredSteps}}.
The numbers are those of <a href="geometry.json">geometry.json</a>; the settings and timings are in <a href="run.json">run.json</a>, every steering iteration in <a href="trace.jsonl">trace.jsonl</a>.</p>

<h2>Result</h2>
<table class="pics"><tr>
<td><div class="frame"><img src="image.png" alt="the image">{{range .Rows}}<div class="bbox" style="left:{{.Left}}%;top:{{.Top}}%;width:{{.W}}%;height:{{.H}}%;border-color:{{.Color}}"><span style="background:{{.Color}}">{{.Name}}</span></div>{{end}}</div>
<div class="cap">The image with the plan's boxes.</div></td>
<td><img src="regions.png" alt="aligned masks and frozen region" width="256"><div class="cap">Each object's mask after the shift onto its box, in its color; the frozen region F outlined in white.</div></td>
<td><img src="composed.png" alt="the composed initial latent" width="256"><div class="cap">The composed initial latent, decoded: the background noise with each object's own noise pasted into its mask (and, with compose_box_to_bg, the box around it).</div></td>
{{with .SDXL}}<td><img src="{{.File}}" alt="the image refined by the SDXL refiner" width="256"><div class="cap">The image refined by the SDXL refiner (<a href="{{.File}}">{{.File}}</a>, {{.Width}}×{{.Height}}): {{.StepsRun}} of {{.Steps}} Euler steps (strength {{.Strength}}), guidance {{.Guidance}}, seed {{.Seed}}, the caption with the negative prompt <code>{{.NegativePrompt}}</code>; run.json's sdxl records the pass.</div></td>{{end}}
</tr></table>
<p>Overall prompt: <code>{{.OverallPrompt}}</code><br>Negative prompts: overall <code>{{.OverallNegative}}</code>; single-object <code>{{.SONegative}}</code></p>
<div class="tokens">{{range .Tokens}}<span{{if .Color}} style="border-color:{{.Color}}"{{end}}{{if .Word}} class="word"{{end}}>{{.Text}}<sub>{{.Position}}</sub></span>{{end}}</div>
<p class="count">The overall prompt's tokens with their positions; a phrase's tokens are framed in its object's color, its word token underlined.</p>

<h2>Objects</h2>
<table id="geometry">
<tr><th class="name">object</th><th class="name">description (SAA)</th><th>scene box (cells)</th><th>single-object box (cells)</th><th>shift (cells, exact → applied)</th><th>mask area, center (cells)</th><th class="name">word token: own run · overall</th><th class="name">own run steered at steps</th></tr>
{{range .Rows}}<tr><td class="name"><span class="swatch" style="background:{{.Color}}"></span>{{.Name}}</td>
<td class="name">{{.SAA.Final}} <span class="count">(candidates {{range $i, $c := .SAA.Chosen}}{{if $i}}, {{end}}{{$c}}{{end}})</span></td>
<td>{{.Box.Cells}}</td><td>{{.SOBox.Cells}}</td>
<td>({{f2 (index .Shift.Unquantized 0)}}, {{f2 (index .Shift.Unquantized 1)}}) → ({{index .Shift.Cells 0}}, {{index .Shift.Cells 1}})</td>
<td>{{.Mask.AreaCells}}, ({{f2 (index .Mask.CenterOfMass 0)}}, {{f2 (index .Mask.CenterOfMass 1)}})</td>
<td class="name"><code>{{.SOPrompt.WordToken}}</code> at {{.SOPrompt.WordIndex}} · <code>{{.OverallPrompt.WordToken}}</code> at {{.OverallPrompt.WordIndex}}</td>
<td class="name">{{.Steered}}</td></tr>
{{end}}</table>

<table class="pics">
<tr><th class="name">object</th><th class="name">its own run</th><th class="name">its mask</th><th class="name">its word token's attention</th><th class="name">overall run's attention</th><th class="name">reference attention</th></tr>
{{range .Rows}}<tr id="object-{{.Index}}"><td class="name"><span class="swatch" style="background:{{.Color}}"></span>{{.Name}}<div class="cap">{{.Prompt}}</div></td>
<td><img src="{{.ImageFile}}" alt="{{.Name}}" width="200"></td>
<td><img src="{{.MaskFile}}" alt="mask" width="200"></td>
<td><img src="{{.SaliencyFile}}" alt="attention in its own run" width="200"></td>
<td><img src="{{.OverallFile}}" alt="overall attention" width="200"></td>
<td><img src="{{.ReferenceFile}}" alt="reference attention" width="200"></td></tr>
{{if .SAM}}<tr class="sam"><td class="cap">SAM candidates (§8.1)</td><td colspan="5">{{range .SAM}}<figure style="display:inline-block;margin:0 8px 0 0"><img src="{{.File}}" alt="{{.Caption}}" width="120"{{if .Chosen}} style="outline:3px solid #2a2"{{end}}><figcaption class="cap">{{if .Chosen}}chosen: {{end}}{{.Caption}}</figcaption></figure>{{end}}</td></tr>{{end}}
{{end}}</table>
<p class="count">The object's own run with its mask and the attention the mask came from; then, over the final image with the scene box, the attention of the object's word token in the overall run and in its own run moved onto its box (the reference the constraint pulls the overall run towards), both averaged over steps 1-{{.Window}}, the heads and the steering layers, each scaled to its own range.</p>

{{if .Preview}}<h2>Overall run, step by step</h2>
<img class="strip" src="{{.Preview}}" alt="intermediate decodes">
<p class="count">The overall run's latent after the steps shown, decoded.</p>{{end}}

<h2>Time</h2>
<table id="seconds"><tr><th class="name">stage</th><th>seconds</th></tr>
{{range .Seconds}}<tr><td class="name">{{.Stage}}</td><td>{{.Seconds}}</td></tr>
{{end}}</table>
</body></html>
`
