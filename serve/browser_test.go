package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/rfnet/rfnet-native/llm"
	"github.com/rfnet/rfnet-native/serve/web"
)

// chromium is Debian's chromium, which .ci/run installs; ok is false (and the
// test says why) where it is missing and RFNET_REQUIRE_CHROMIUM is unset.
func chromium(t *testing.T) (bin string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("chromium is not installed here; .ci/run installs it and drives the page")
		if os.Getenv("RFNET_REQUIRE_CHROMIUM") != "" {
			t.Fatal("RFNET_REQUIRE_CHROMIUM is set but chromium is missing")
		}
		return "", false
	}
	return bin, true
}

// browser starts headless chromium without network services or a profile of
// its own, and returns a chromedp context for one tab of it.
func browser(t *testing.T, ctx context.Context, bin string) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1400))
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	return tab
}

// startPageServer starts the real server on 127.0.0.1 over the tiny model,
// planning with the fake LLM (fakePlan's two objects) and requiring key when
// it is not "", and returns its base URL.
func startPageServer(t *testing.T, key string) string {
	t.Helper()
	return newTestServer(t, Options{Planner: fakePlanner(t, fakePlan), APIKey: key}).URL
}

// pageErrors collects what the page's console and scripts report as errors
// (exceptions, CSP violations, failed loads) for the test to fail on.
type pageErrors struct {
	mu   sync.Mutex
	list []string
}

func (p *pageErrors) listen(ctx context.Context) {
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			p.add((&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry.Level == cdplog.EntryLevelError {
				p.add(fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}()
}

func (p *pageErrors) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, s)
}

func (p *pageErrors) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.list)
}

// drag presses the left button at (x, y), moves in a few steps to (x+dx,
// y+dy) with the button held, and releases it there: what a person's drag
// sends, as Input.dispatchMouseEvent events.
func drag(x, y, dx, dy float64) chromedp.Action[chromedp.Void] {
	held := func(p *input.DispatchMouseEventParams) { p.Button = input.MouseButtonLeft; p.Buttons = 1 }
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(chromedp.MouseMoved, x, y),
		chromedp.MouseEvent(chromedp.MousePressed, x, y, held, chromedp.ClickCount(1)),
	}
	for i := 1; i <= 5; i++ {
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x+dx*float64(i)/5, y+dy*float64(i)/5, held))
	}
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, x+dx, y+dy, held, chromedp.ClickCount(1)))
	return chromedp.Steps(steps...)
}

// boxOf is what the page shows of one object's box: its plan coordinates
// (data-box) and where it lies on the screen.
type boxOf struct {
	Index  int        `json:"index"`
	Box    [4]float64 `json:"box"`
	X, Y   float64    // the centre, in CSS pixels
	R, B   float64    // the right and bottom edges, in CSS pixels
	Canvas float64    // the canvas's width inside its border, in CSS pixels
}

func readBox(t *testing.T, ctx context.Context, name string) boxOf {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[boxOf](fmt.Sprintf(`(() => {
  const boxes = [...document.querySelectorAll('#canvas .box')];
  const i = boxes.findIndex((b) => b.querySelector('.box-name').textContent === %q);
  if (i < 0) return null;
  const r = boxes[i].getBoundingClientRect();
  return { index: i, box: boxes[i].dataset.box.split(' ').map(Number), X: r.x + r.width / 2, Y: r.y + r.height / 2, R: r.right, B: r.bottom,
    Canvas: document.getElementById('canvas').clientWidth };
})()`, name)))
	if err != nil {
		t.Fatalf("the box of %q: %v", name, err)
	}
	return b
}

// TestPageInChromium drives the page in a real browser against the real
// server: plan with the fake LLM, drag one box with the mouse and move another
// with the keyboard, edit a description, generate on the tiny model, wait for
// the result image, and check that the job the server ran carries the edits.
func TestPageInChromium(t *testing.T) {
	bin, ok := chromium(t)
	if !ok {
		return
	}
	base := startPageServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tab := browser(t, ctx, bin)
	var errs pageErrors
	errs.listen(tab)

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v\npage errors: %q", what, err, errs.all())
		}
	}
	step("open the page",
		// The log domain reports CSP violations and failed loads only once enabled.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, cdplog.Enable, struct{}{})
			return err
		}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitReady(chromedp.ID("prompt")))
	step("plan",
		chromedp.SendKeys(chromedp.ID("prompt"), "a mouse hunting a lion"),
		chromedp.Click(chromedp.ID("plan-button")),
		chromedp.WaitReady(chromedp.CSS(`#canvas .box[data-index="1"]`)))

	// Drag the mouse's box by (dx, dy) CSS pixels; its plan box moves by the
	// same distance in canvas units (512 of them across the canvas).
	before := readBox(t, tab, "a mouse")
	const dx, dy = 60.0, -40.0
	step("drag", drag(before.X, before.Y, dx, dy))
	after := readBox(t, tab, "a mouse")
	scale := llm.Canvas / before.Canvas
	wantX, wantY := before.Box[0]+dx*scale, before.Box[1]+dy*scale
	if math.Abs(after.Box[0]-wantX) > 1 || math.Abs(after.Box[1]-wantY) > 1 || after.Box[2] != before.Box[2] || after.Box[3] != before.Box[3] {
		t.Fatalf("after a drag by (%g, %g) px at %g canvas units a pixel: box %v, want about [%g %g %g %g] (from %v)",
			dx, dy, scale, after.Box, wantX, wantY, before.Box[2], before.Box[3], before.Box)
	}

	// The keyboard: the boxes follow the Plan button in the tab order; right
	// twice moves the lion's box by 2×4, shift+down makes it 4 taller.
	lion := readBox(t, tab, "a lion")
	tabs := []chromedp.Action[chromedp.Void]{chromedp.Focus(chromedp.ID("plan-button"))}
	for range lion.Index + 1 {
		tabs = append(tabs, chromedp.KeyEvent(kb.Tab))
	}
	step("tab to the lion's box", tabs...)
	if focused, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.activeElement.getAttribute('aria-label') || document.activeElement.id`)); err != nil || !strings.HasPrefix(focused, "a lion:") {
		t.Fatalf("after %d tabs from Plan the focus is on %q (%v), want the lion's box", lion.Index+1, focused, err)
	}
	step("keys", chromedp.KeyEvent(kb.ArrowRight+kb.ArrowRight),
		chromedp.KeyEvent(kb.ArrowDown, chromedp.KeyModifiers(chromedp.ModifierShift)))
	lionAfter := readBox(t, tab, "a lion")
	if want := [4]float64{lion.Box[0] + 8, lion.Box[1], lion.Box[2], lion.Box[3] + 4}; lionAfter.Box != want {
		t.Fatalf("after right, right, shift+down: box %v, want %v", lionAfter.Box, want)
	}

	// A bad field comes back as the API's error and is shown next to that field.
	step("a bad width",
		chromedp.SetValue(chromedp.ID("width"), "100"), chromedp.Click(chromedp.ID("generate")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-param="width"] .field-error').textContent.startsWith('width')`,
			chromedp.WithPollingTimeout(10*time.Second)))

	// An object without a name: the error names plan.objects[i] and lands in that object's form.
	name := fmt.Sprintf(`#objects fieldset.object:nth-of-type(%d) input[name="name"]`, after.Index+1)
	step("an object without a name",
		chromedp.SetValue(chromedp.ID("width"), "128"),
		chromedp.Focus(chromedp.CSS(name)), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).select()`, name)),
		chromedp.KeyEvent(kb.Backspace), chromedp.Click(chromedp.ID("generate")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('#objects fieldset.object:nth-of-type(%d) > .field-error').textContent.includes('no name')`, after.Index+1),
			chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Focus(chromedp.CSS(name)), chromedp.KeyEvent("a mouse"))

	const edited = "baring its tiny teeth, edited in the page"
	desc := fmt.Sprintf(`#objects fieldset.object:nth-of-type(%d) input[name="description"]`, after.Index+1)
	step("edit the description and generate",
		// Select the old text and type over it, as a person would.
		chromedp.Focus(chromedp.CSS(desc)), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).select()`, desc)),
		chromedp.KeyEvent(edited),
		chromedp.SetValue(chromedp.ID("width"), "128"), chromedp.SetValue(chromedp.ID("height"), "128"),
		chromedp.SetValue(chromedp.ID("steps"), "6"), chromedp.SetValue(chromedp.ID("preview-every"), "2"),
		chromedp.SetValue(chromedp.ID("seed"), "7"),
		chromedp.Click(chromedp.ID("generate")))
	_, err := chromedp.Run(tab, chromedp.Poll[bool](`document.getElementById('result-image').complete && document.getElementById('result-image').naturalWidth > 0`,
		chromedp.WithPollingTimeout(80*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		state, _ := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
		jobErr, _ := chromedp.Run(tab, chromedp.Text(chromedp.ID("job-error")))
		t.Fatalf("no result image: %v (status %q, error %q)\npage errors: %q", err, state, jobErr, errs.all())
	}
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100) /* 100: PNG, not JPEG */)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("RFNET_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shotPath := filepath.Join(dir, "serve-page.png")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shotPath)

	// What the server ran: the newest job's plan.json.
	shown, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any](`({
  objects: document.querySelectorAll('#result-objects img').length,
  run: document.querySelectorAll('#result-run img').length,
  step: document.getElementById('step').textContent,
  bar: document.getElementById('progress-bar').value,
  job: document.getElementById('job-id').textContent,
  status: document.getElementById('status').textContent,
  preview: !document.getElementById('preview').hidden && document.getElementById('preview').src.startsWith('data:image/png;base64,'),
  loss: document.getElementById('loss').textContent,
})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page shows %v", shown)
	id := strings.TrimSuffix(strings.TrimPrefix(shown["job"].(string), "job "), ":")
	plan := jobPlan(t, base, id)
	i := slices.IndexFunc(plan.Objects, func(o llm.Object) bool { return o.Name == "a mouse" })
	j := slices.IndexFunc(plan.Objects, func(o llm.Object) bool { return o.Name == "a lion" })
	if i < 0 || j < 0 {
		t.Fatalf("the job's plan lacks an object: %+v", plan)
	}
	if plan.Objects[i].Box != after.Box || plan.Objects[j].Box != lionAfter.Box {
		t.Errorf("the job's boxes: mouse %v, lion %v; the page showed %v and %v", plan.Objects[i].Box, plan.Objects[j].Box, after.Box, lionAfter.Box)
	}
	if len(plan.Objects[i].Descriptions) == 0 || plan.Objects[i].Descriptions[0] != edited {
		t.Errorf("the job's descriptions of the mouse: %q, want %q first", plan.Objects[i].Descriptions, edited)
	}
	if status := shown["status"].(string); strings.Contains(status, "NaN") || strings.Contains(status, "undefined") || !strings.Contains(status, "succeeded") {
		t.Errorf("the progress reads %q", status)
	}
	if shown["preview"] != true || !strings.HasPrefix(shown["loss"].(string), "guidance loss ") {
		t.Errorf("no preview or guidance loss shown: %v", shown)
	}
	if shown["objects"].(float64) < 6 || shown["run"].(float64) < 2 || shown["bar"].(float64) != 1 {
		t.Errorf("the result shows %v: want an image, mask and attention of both objects, layout and regions, a full bar", shown)
	}
	// The console's only errors are the failed requests of the bad width and the nameless object.
	if e := errs.all(); len(e) != 2 || !strings.Contains(e[0], "400") || !strings.Contains(e[1], "400") {
		t.Errorf("the page reported errors: %q", e)
	}
}

// TestPageWithAnAPIKey opens the page of a server with an API key: the first
// request's 401 brings up the key dialog, and once the key is typed the page
// sends it everywhere without asking again: planning works, a long job's
// events stream in (read with fetch, which can send the header), and Cancel
// stops the job.
func TestPageWithAnAPIKey(t *testing.T) {
	bin, ok := chromium(t)
	if !ok {
		return
	}
	const key = "page-test-key"
	base := startPageServer(t, key)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tab := browser(t, ctx, bin)
	if err := chromedp.Do(tab,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromedp.SendKeys(chromedp.ID("api-key"), key),
		chromedp.Click(chromedp.ID("key-submit")),
		chromedp.SendKeys(chromedp.ID("prompt"), "a mouse hunting a lion"),
		chromedp.Click(chromedp.ID("plan-button")),
		chromedp.WaitReady(chromedp.CSS(`#canvas .box[data-index="1"]`)),
		// 150 steps run for many seconds: long enough to see steps and cancel.
		chromedp.SetValue(chromedp.ID("width"), "128"), chromedp.SetValue(chromedp.ID("height"), "128"),
		chromedp.SetValue(chromedp.ID("steps"), "150"),
		chromedp.Click(chromedp.ID("generate")),
		chromedp.Poll[chromedp.Void](`document.getElementById('progress-bar').value > 0`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Click(chromedp.ID("cancel")),
		chromedp.Poll[chromedp.Void](`document.getElementById('job-state').textContent.startsWith('canceled')`, chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("%v (status %q)", err, state)
	}
	state, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any](`({
  key: sessionStorage.getItem('rfnet-api-key'),
  open: document.getElementById('key-dialog').open,
  errors: [...document.querySelectorAll('.field-error')].map((e) => e.textContent).join(''),
  bar: document.getElementById('progress-bar').value,
  cancel: document.getElementById('cancel').disabled,
  job: document.getElementById('job-id').textContent,
})`))
	if err != nil {
		t.Fatal(err)
	}
	if state["key"] != key || state["open"] != false || state["errors"] != "" || state["bar"].(float64) >= 1 || state["cancel"] != true {
		t.Errorf("after the key and a canceled job: %v", state)
	}
	// The server agrees that the job was canceled.
	id := strings.TrimSuffix(strings.TrimPrefix(state["job"].(string), "job "), ":")
	req, _ := http.NewRequest("GET", base+"/v1/jobs/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var job struct{ State string }
	if err := json.NewDecoder(res.Body).Decode(&job); err != nil || job.State != "canceled" {
		t.Errorf("job %s: %s %+v %v", id, res.Status, job, err)
	}

	// A short job's pictures: an <img> cannot send the key, so they come as data: URLs.
	err = chromedp.Do(tab,
		chromedp.SetValue(chromedp.ID("width"), "64"), chromedp.SetValue(chromedp.ID("height"), "64"),
		chromedp.SetValue(chromedp.ID("steps"), "2"),
		chromedp.Click(chromedp.ID("generate")))
	var src string
	if err == nil {
		src, err = chromedp.Run(tab, chromedp.Poll[string](`document.getElementById('result-image').naturalWidth > 0 && document.getElementById('result-image').src`,
			chromedp.WithPollingTimeout(30*time.Second)))
	}
	if err != nil || !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Errorf("the result image with a key: %.40q %v", src, err)
	}
}

// TestPageOpensPastJobs lists a job another client submitted (RFNet through
// the OpenAI API), opens it from the list, shows its pictures and loads its
// plan into the editor.
func TestPageOpensPastJobs(t *testing.T) {
	bin, ok := chromium(t)
	if !ok {
		return
	}
	ts := newTestServer(t, Options{Planner: fakePlanner(t, fakePlan)})
	code, body, _ := ts.do("POST", "/v1/images/generations", map[string]any{
		"prompt": "a mouse hunting a lion", "size": "64x64", "steps": 2, "method": "rfnet", "seed": 5})
	if code != http.StatusOK {
		t.Fatalf("the OpenAI request: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tab := browser(t, ctx, bin)
	if err := chromedp.Do(tab,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.Click(chromedp.CSS(`#jobs-list button.job`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('result-image').naturalWidth > 0`, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.WaitReady(chromedp.CSS(`#canvas .box[data-index="1"]`)),
	); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
		t.Fatalf("%v (status %q)", err, state)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any](`({
  state: document.getElementById('job-state').textContent,
  objects: document.querySelectorAll('#result-objects img').length,
  names: [...document.querySelectorAll('#canvas .box-name')].map((b) => b.textContent).sort(),
  prompt: document.getElementById('prompt').value,
})`))
	if err != nil {
		t.Fatal(err)
	}
	if got["state"] != "succeeded" || got["objects"].(float64) != 6 || mustJSON(got["names"]) != `["a lion","a mouse"]` || got["prompt"] != "a mouse hunting a lion" {
		t.Errorf("the opened job shows %v", got)
	}

	// The loaded plan is edited like a new one: the lion's bottom-right
	// handle resizes its box; a box added and deleted with the keyboard leaves
	// the focus on a box.
	lion := readBox(t, tab, "a lion")
	const grow = 20.0
	if err := chromedp.Do(tab, drag(lion.R-3, lion.B-3, grow, grow)); err != nil {
		t.Fatal(err)
	}
	d := grow * llm.Canvas / lion.Canvas
	if got := readBox(t, tab, "a lion").Box; got[0] != lion.Box[0] || got[1] != lion.Box[1] ||
		math.Abs(got[2]-min(lion.Box[2]+d, llm.Canvas-lion.Box[0])) > 1 || math.Abs(got[3]-min(lion.Box[3]+d, llm.Canvas-lion.Box[1])) > 1 {
		t.Errorf("after dragging the corner of %v by %g px: %v", lion.Box, grow, got)
	}
	err = chromedp.Do(tab,
		chromedp.Focus(chromedp.ID("add-box")), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitReady(chromedp.CSS(`#canvas .box[data-index="2"]`)),
		chromedp.KeyEvent(kb.Delete))
	var after map[string]any
	if err == nil {
		after, err = chromedp.Run(tab, chromedp.Evaluate[map[string]any](`({ boxes: document.querySelectorAll('#canvas .box').length,
  forms: document.querySelectorAll('#objects fieldset.object').length, focused: document.activeElement.className })`))
	}
	if err != nil || after["boxes"].(float64) != 2 || after["forms"].(float64) != 2 || after["focused"] != "box" {
		t.Errorf("after adding and deleting a box: %v %v", after, err)
	}
}

// jobPlan reads job id's plan.json through the API.
func jobPlan(t *testing.T, base, id string) *llm.Plan {
	t.Helper()
	res, err := http.Get(base + "/v1/jobs/" + id + "/files/plan.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p llm.Plan
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("job %s's plan.json: %s %v", id, res.Status, err)
	}
	return &p
}

// TestPageHelpersInChromium runs parts of the page in the browser on cases
// the end-to-end tests rarely or never hit: boxes pushed past the canvas or
// shrunk past the smallest size, the object files of a job, events split
// across chunks at awkward places, stage names, and a job of several images
// in seed folders (which the page itself never asks for).
func TestPageHelpersInChromium(t *testing.T) {
	bin, ok := chromium(t)
	if !ok {
		return
	}
	s := httptest.NewServer(web.Handler())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tab := browser(t, ctx, bin)
	if err := chromedp.Do(tab, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[map[string]any](`(async () => {
  const { moved, resized } = await import('/static/editor.js');
  const { objectFiles, stageText } = await import('/static/job.js');
  const { parse } = await import('/static/events.js');
  const chunks = ['id: 1\nevent: st', 'ate\ndata: {"state": "running"}\r', '\n\r\n: keep-alive\n\n',
    'id: 2\nevent: step\ndata: {"step":\ndata: 1}\n', '\nid: 3\ndata: x\n\n'];
  const body = new ReadableStream({ start(c) { for (const s of chunks) c.enqueue(new TextEncoder().encode(s)); c.close(); } });
  const events = [];
  for await (const ev of parse(body)) events.push(ev);
  // A job of two images: one button per seed folder, the first folder shown.
  const { JobView } = await import('/static/job.js');
  const view = new JobView(() => {});
  view.finish({ id: 'j1', state: 'succeeded', files: ['seed-5/image.png', 'seed-5/layout.png', 'seed-5/objects/00-a-cat.png',
    'seed-5/objects/00-a-cat-mask.png', 'seed-6/image.png', 'seed-6/image-sdxl.png', 'seed-6/layout.png'] });
  await new Promise((r) => setTimeout(r, 0));
  const src = () => document.getElementById('result-image').getAttribute('src');
  const seeds = { buttons: [...document.querySelectorAll('#result-seeds button')].map((b) => b.textContent), first: src(),
    objects: document.querySelectorAll('#result-objects img').length };
  document.querySelector('#result-seeds button:nth-of-type(2)').click();
  await new Promise((r) => setTimeout(r, 0));
  seeds.second = src();
  seeds.run = [...document.querySelectorAll('#result-run img')].map((i) => i.getAttribute('src'));
  return {
    movedPast: moved([400, 10, 100, 50], 100, -100),
    movedIn: moved([10, 10, 100, 50], 5.4, 4.6),
    shrunk: resized([100, 100, 50, 50], 'nw', 100, 100),
    grown: resized([100, 100, 50, 50], 'se', 1000, 1000),
    files: Object.fromEntries(objectFiles(['image.png', 'objects/00-a-lion.png', 'objects/00-a-lion-mask.png',
      'objects/00-a-lion-attention.png', 'objects/00-a-lion-overall-attention.png', 'objects/01-a-big-mask.png',
      'objects/01-a-big-mask-mask.png'])),
    events,
    seeds,
    stages: [stageText({ stage: 'object', object: 1, objects: 2 }), stageText({ stage: 'overall', objects: 2 }),
      stageText({ stage: 'denoise', image: 1, images: 4 }), stageText({ stage: 'object', object: 0, objects: 2, images: 1 })],
  };
})()`, func(p *runtime.EvaluateParams) { p.AwaitPromise = ptrTo(true) }))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"movedPast": []any{412.0, 0.0, 100.0, 50.0},
		"movedIn":   []any{15.0, 15.0, 100.0, 50.0},
		"shrunk":    []any{142.0, 142.0, 8.0, 8.0},
		"grown":     []any{100.0, 100.0, 412.0, 412.0},
		"files": map[string]any{
			"00-a-lion":     map[string]any{"image": "objects/00-a-lion.png", "mask": "objects/00-a-lion-mask.png", "attention": "objects/00-a-lion-attention.png"},
			"01-a-big-mask": map[string]any{"image": "objects/01-a-big-mask.png", "mask": "objects/01-a-big-mask-mask.png"},
		},
		"seeds": map[string]any{"buttons": []any{"seed 5", "seed 6"}, "first": "/v1/jobs/j1/files/seed-5/image.png", "objects": 2,
			// The refined image is the result where the SDXL refiner made one.
			"second": "/v1/jobs/j1/files/seed-6/image-sdxl.png", "run": []any{"/v1/jobs/j1/files/seed-6/image.png", "/v1/jobs/j1/files/seed-6/layout.png"}},
		"stages": []any{"object 2/2", "overall", "denoise, image 2/4", "object 1/2"},
		"events": []any{
			map[string]any{"id": "1", "type": "state", "data": `{"state": "running"}`},
			map[string]any{"id": "2", "type": "step", "data": "{\"step\":\n1}"},
			map[string]any{"id": "3", "type": "message", "data": "x"},
		},
	}
	for k, w := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(w) {
			t.Errorf("%s: %s, want %s", k, g, mustJSON(w))
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
