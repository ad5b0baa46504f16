package report

import "github.com/rfnet/rfnet-native/internal/htmlstyle"

const pageTemplate = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>RFBench report</title>
<style>
` + htmlstyle.CSS + `.grid td { vertical-align: top; text-align: left; width: 260px; }
.score { font-size: 12px; margin-top: 4px; } .expl { color: #555; }
.prompt { font-weight: 600; } .cat { color: #777; font-size: 12px; }
</style></head><body>
<h1>RFBench report</h1>
<p>{{.ImageCount}} images; methods: {{range $i, $m := .Methods}}{{if $i}}, {{end}}{{$m}}{{end}}; seeds: {{.Run.Seeds}};
model: {{.Run.Model.ModelType}} ({{.Run.Model.Weights}}); {{.Run.Config.Steps}} steps at {{.Run.Config.Width}}×{{.Run.Config.Height}}.</p>

{{if .Skipped}}<h2>Skipped items</h2>
<p>These files failed their check and are left out of the scores and the images. <code>rfnet-native bench</code> with the run's settings generates broken images again; <code>rfnet-native eval</code> judges them again.</p>
<ul id="skipped">{{range .Skipped}}<li><code>{{.}}</code></li>
{{end}}</ul>{{if .SkippedMore}}<p>… and {{.SkippedMore}} more.</p>{{end}}{{end}}

<h2>Scores</h2>
<p>R&amp;A and C&amp;I average the items of each area; Avg pools every item (not the mean of the two areas). Counts: scored / generated, failed judgements in brackets.</p>
{{$t := .Table}}{{$cols := .Columns}}{{if not $t.Judges}}<p><b>No judge results yet:</b> run <code>rfnet-native eval --run DIR --judge gpt4score</code> (and <code>--judge gpt4clip</code>).</p>{{end}}
<table id="scores">
<tr><th class="name" rowspan="2">method</th>{{range $t.Judges}}<th colspan="3">{{.}}</th>{{end}}</tr>
<tr>{{range $t.Judges}}{{range $cols}}<th>{{.Label}}</th>{{end}}{{end}}</tr>
{{range $m := $t.Methods}}<tr><td class="name">{{$m}}</td>{{range $j := $t.Judges}}{{range $cols}}{{$c := cell $t $j $m .Key}}<td data-judge="{{$j}}" data-method="{{$m}}" data-col="{{.Key}}">{{fmt3 $c}} <span class="count">{{$c.Scored}}/{{$c.Total}}{{if $c.Failed}} [{{$c.Failed}}]{{end}}</span></td>{{end}}{{end}}</tr>
{{end}}</table>

<h2>By subcategory</h2>
<table id="categories">
<tr><th class="name" rowspan="2">subcategory</th>{{range $t.Judges}}<th colspan="{{len $t.Methods}}">{{.}}</th>{{end}}</tr>
<tr>{{range $t.Judges}}{{range $t.Methods}}<th>{{.}}</th>{{end}}{{end}}</tr>
{{range $cat := $t.Categories}}<tr><td class="name">{{$cat}}</td>{{range $j := $t.Judges}}{{range $m := $t.Methods}}{{$c := cell $t $j $m $cat}}<td data-judge="{{$j}}" data-method="{{$m}}" data-col="{{$cat}}">{{fmt3 $c}} <span class="count">{{$c.Scored}}</span></td>{{end}}{{end}}</tr>
{{end}}</table>

<h2>Images</h2>
<table class="grid">
<tr><th class="name">prompt</th>{{range .Methods}}<th class="name">{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr id="{{.ID}}-s{{.Seed}}"><td><div class="prompt">{{.Prompt}}</div><div class="cat">{{.ID}} · seed {{.Seed}} · {{.Category}}</div></td>
{{range .Cells}}<td>{{if .Missing}}<span class="count">not generated</span>{{else}}<div class="frame"><img src="{{.Image}}" alt="{{.Method}}">{{range .Boxes}}<div class="bbox" style="left:{{.Left}}%;top:{{.Top}}%;width:{{.W}}%;height:{{.H}}%;border-color:{{.Color}}"><span style="background:{{.Color}}">{{.Name}}</span></div>{{end}}</div>
{{range .Scores}}<div class="score"><b>{{.Judge}}</b> {{.Text}}{{if .Explanation}} <span class="expl">— {{.Explanation}}</span>{{end}}</div>{{end}}{{end}}</td>
{{end}}</tr>
{{end}}</table>
</body></html>
`
