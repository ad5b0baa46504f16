// The plan editor: the objects' boxes over the 512×512 canvas (llm.Canvas:
// boxes are [x, y, w, h] on it whatever the image size), one form per object
// (name, main description, alternatives, the box in numbers), the background
// and the negative prompt.
import { el, make } from './dom.js';

export const canvasSize = 512;
const minSize = 8; // the smallest box a drag or key can make, in canvas pixels
const keyStep = 4; // canvas pixels an arrow key moves or resizes a box by
const colors = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000'];

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

// moved is box [x, y, w, h] shifted by (dx, dy), kept inside the canvas.
export function moved([x, y, w, h], dx, dy) {
  return [clamp(Math.round(x + dx), 0, canvasSize - w), clamp(Math.round(y + dy), 0, canvasSize - h), w, h];
}

// resized is box [x, y, w, h] with the edges of corner ('nw', 'ne', 'sw',
// 'se') moved by (dx, dy), kept inside the canvas and at least minSize wide.
export function resized([x, y, w, h], corner, dx, dy) {
  let [x0, y0, x1, y1] = [x, y, x + w, y + h];
  if (corner.includes('w')) x0 = clamp(Math.round(x0 + dx), 0, x1 - minSize);
  if (corner.includes('e')) x1 = clamp(Math.round(x1 + dx), x0 + minSize, canvasSize);
  if (corner.includes('n')) y0 = clamp(Math.round(y0 + dy), 0, y1 - minSize);
  if (corner.includes('s')) y1 = clamp(Math.round(y1 + dy), y0 + minSize, canvasSize);
  return [x0, y0, x1 - x0, y1 - y0];
}

export class Editor {
  constructor() {
    this.canvas = el('canvas');
    this.forms = el('objects');
    this.background = el('background');
    this.negative = el('negative');
    this.loaded = false; // whether a plan came from the planner or a past job
    this.objects = [];
    this.drag = null;
    el('add-box').addEventListener('click', () => this.add());
    this.canvas.addEventListener('pointerdown', (e) => this.dragStart(e));
    this.canvas.addEventListener('pointermove', (e) => this.dragMove(e));
    this.canvas.addEventListener('pointerup', () => { this.drag = null; });
    this.canvas.addEventListener('pointercancel', () => { this.drag = null; });
    this.canvas.addEventListener('keydown', (e) => this.key(e));
  }

  // load replaces what is edited with plan (llm.Plan's JSON).
  load(plan) {
    this.loaded = true;
    this.version = plan.version || 1;
    this.objects = (plan.objects || []).map((o) => ({
      name: o.name, box: o.box.map(Number), descriptions: [...(o.descriptions || [''])],
    }));
    this.background.value = plan.background || '';
    this.negative.value = plan.negative || '';
    this.render();
  }

  // hasPlan says whether there is a plan to send (else the server plans).
  hasPlan() { return this.loaded || this.objects.length > 0; }

  // plan is the edited plan, in llm.Plan's JSON shape.
  plan(prompt) {
    return {
      version: this.version || 1,
      prompt,
      objects: this.objects.map((o) => ({ name: o.name, box: [...o.box], descriptions: [...o.descriptions] })),
      background: this.background.value,
      negative: this.negative.value,
    };
  }

  add() {
    const n = this.objects.length;
    const off = (n * 24) % 192;
    this.objects.push({ name: `object ${n + 1}`, box: [160 + off, 160 + off, 160, 160], descriptions: [''] });
    this.render();
    this.boxes[n].focus();
  }

  remove(i) {
    this.objects.splice(i, 1);
    this.render();
    (this.boxes[Math.min(i, this.boxes.length - 1)] || el('add-box')).focus();
  }

  // setBox changes object i's box and updates its element and form in place
  // (a rebuild would end a drag and lose focus).
  setBox(i, box) {
    this.objects[i].box = box;
    this.place(i);
    this.forms.children[i].querySelectorAll('input[name^="box-"]').forEach((input, k) => { input.value = box[k]; });
  }

  place(i) {
    const [x, y, w, h] = this.objects[i].box;
    const e = this.boxes[i];
    const pct = (v) => `${(v / canvasSize) * 100}%`;
    Object.assign(e.style, { left: pct(x), top: pct(y), width: pct(w), height: pct(h) });
    e.dataset.box = `${x} ${y} ${w} ${h}`;
    e.setAttribute('aria-label', `${this.objects[i].name}: x ${x}, y ${y}, width ${w}, height ${h}`);
    e.querySelector('.box-name').textContent = this.objects[i].name;
  }

  render() {
    this.canvas.replaceChildren();
    this.forms.replaceChildren();
    this.boxes = this.objects.map((o, i) => {
      const box = make('div', { class: 'box', tabindex: 0, role: 'button', 'aria-roledescription': 'movable box', 'data-index': i },
        make('span', { class: 'box-name' }),
        ...['nw', 'ne', 'sw', 'se'].map((c) => make('span', { class: `handle ${c}`, 'data-corner': c, 'aria-hidden': 'true' })));
      box.style.borderColor = colors[i % colors.length];
      box.querySelector('.box-name').style.background = colors[i % colors.length];
      this.canvas.append(box);
      this.forms.append(this.form(i));
      return box;
    });
    this.objects.forEach((_, i) => this.place(i));
  }

  // form is object i's fieldset. Inputs are labelled by wrapping them, so the
  // generated forms need no ids.
  form(i) {
    const o = this.objects[i];
    const param = `plan.objects[${i}]`;
    const input = (attrs, value, onInput) => {
      const e = make('input', attrs);
      e.value = value;
      e.addEventListener('input', () => onInput(e.value));
      return e;
    };
    const name = input({ type: 'text', name: 'name', required: true }, o.name, (v) => { o.name = v; this.place(i); });
    const main = input({ type: 'text', name: 'description' }, o.descriptions[0] || '', (v) => { o.descriptions[0] = v; });
    const alts = make('textarea', { name: 'alternatives', rows: 2 });
    alts.value = o.descriptions.slice(1).join('\n');
    alts.addEventListener('input', () => {
      o.descriptions = [o.descriptions[0] || '', ...alts.value.split('\n').map((s) => s.trim()).filter(Boolean)];
    });
    const coords = ['x', 'y', 'width', 'height'].map((label, k) => {
      const e = input({ type: 'number', name: `box-${label}`, min: 0, max: canvasSize, step: 1 }, o.box[k], () => {});
      e.addEventListener('change', () => {
        const v = Number(e.value);
        if (e.value === '' || !Number.isFinite(v)) { e.value = o.box[k]; return; }
        const b = [...o.box];
        b[k] = v;
        // Width and height first, then the corner, so the box stays on the canvas.
        b[2] = clamp(Math.round(b[2]), minSize, canvasSize);
        b[3] = clamp(Math.round(b[3]), minSize, canvasSize);
        this.setBox(i, moved(b, 0, 0));
      });
      return make('label', { class: 'coord' }, `${label} `, e);
    });
    const del = make('button', { type: 'button', text: 'Delete object' });
    del.addEventListener('click', () => this.remove(i));
    const swatch = make('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = colors[i % colors.length];
    return make('fieldset', { class: 'object', 'data-param': param },
      make('legend', {}, swatch, `Object ${i + 1}`),
      make('span', { class: 'field-error', 'aria-live': 'polite' }),
      make('div', { class: 'field', 'data-param': `${param}.name` }, make('label', {}, 'Name ', name), make('span', { class: 'field-error', 'aria-live': 'polite' })),
      make('div', { class: 'field', 'data-param': `${param}.descriptions` },
        make('label', {}, 'Description ', main),
        make('label', {}, 'Alternatives (one a line) ', alts),
        make('span', { class: 'field-error', 'aria-live': 'polite' })),
      make('div', { class: 'field coords', 'data-param': `${param}.box` }, ...coords, make('span', { class: 'field-error', 'aria-live': 'polite' })),
      del);
  }

  dragStart(e) {
    const box = e.target.closest('.box');
    if (!box || e.button !== 0) return;
    e.preventDefault(); // no text selection while dragging
    const i = Number(box.dataset.index);
    const handle = e.target.closest('.handle');
    this.drag = {
      i, corner: handle ? handle.dataset.corner : '', x: e.clientX, y: e.clientY, box: [...this.objects[i].box],
      // clientWidth leaves out the canvas's border: boxes are placed in percent of what is inside it.
      scale: canvasSize / this.canvas.clientWidth,
    };
    box.focus();
    box.setPointerCapture(e.pointerId); // the drag goes on when the pointer leaves the box or the canvas
  }

  dragMove(e) {
    const d = this.drag;
    if (!d) return;
    const dx = (e.clientX - d.x) * d.scale;
    const dy = (e.clientY - d.y) * d.scale;
    this.setBox(d.i, d.corner ? resized(d.box, d.corner, dx, dy) : moved(d.box, dx, dy));
  }

  key(e) {
    const box = e.target.closest('.box');
    if (!box) return;
    const i = Number(box.dataset.index);
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (arrows[e.key]) {
      e.preventDefault(); // the page would scroll
      const [dx, dy] = arrows[e.key].map((v) => v * keyStep);
      const b = this.objects[i].box;
      // shift+arrows move the right or bottom edge: right and down grow the box.
      this.setBox(i, e.shiftKey ? resized(b, 'se', dx, dy) : moved(b, dx, dy));
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      e.preventDefault();
      this.remove(i);
    }
  }
}
