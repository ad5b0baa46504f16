// Package htmlstyle is the stylesheet the project's HTML pages share (the
// benchmark report, an RFNet out-dir's index.html), so that they look alike
// and a change to one look is made once.
package htmlstyle

// CSS is the shared part of a page's <style>: text, tables, counts, and image
// frames with boxes drawn over them (a .frame holding an img and .bbox divs
// placed in percent of it, each with a span label).
const CSS = `body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 28px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
.count { color: #888; font-size: 11px; }
.frame { position: relative; width: 256px; }
.frame img { display: block; width: 256px; }
.bbox { position: absolute; border: 2px solid; box-sizing: border-box; }
.bbox span { position: absolute; top: -1px; left: -1px; font-size: 10px; color: #fff; padding: 0 2px; }
`
