// One job on the page: its live progress (from its events) and its result.
import { json, send, fileURL } from './api.js';
import { follow } from './events.js';
import { el, make, showError } from './dom.js';

const finished = new Set(['succeeded', 'failed', 'canceled']);

export class JobView {
  // onFinished(job) is called when a followed job ends (to refresh the list).
  constructor(onFinished) {
    this.onFinished = onFinished;
    this.job = null;
    this.stop = null;
    el('cancel').addEventListener('click', () => this.cancel());
  }

  // start submits an RFNet job request and follows it.
  async start(request) {
    this.show(await json('POST', '/v1/rfnet/jobs', request));
  }

  // open shows a past or running job by id.
  async open(id) {
    this.show(await json('GET', `/v1/jobs/${encodeURIComponent(id)}`));
  }

  // show displays job and, while it is queued or running, follows its events.
  show(job) {
    if (this.stop) this.stop.abort(); // the job shown before is no longer followed
    this.stop = null;
    el('cancel').disabled = true;
    this.job = job;
    this.clear();
    el('job-id').textContent = `job ${job.id}:`;
    this.state(job.state);
    if (finished.has(job.state)) {
      this.finish(job);
      return;
    }
    el('cancel').disabled = false;
    const stop = new AbortController();
    this.stop = stop;
    follow(job.id, (type, data) => this.event(type, data), stop.signal)
      .then(() => json('GET', `/v1/jobs/${encodeURIComponent(job.id)}`))
      .then((done) => { if (this.stop === stop) { this.finish(done); this.onFinished(done); } })
      .catch((err) => { if (!stop.signal.aborted) showError(err, 'job-error'); })
      .finally(() => { if (this.stop === stop) { el('cancel').disabled = true; this.stop = null; } });
  }

  async cancel() {
    if (!this.job) return;
    try {
      await send('DELETE', `/v1/jobs/${encodeURIComponent(this.job.id)}`);
    } catch (err) {
      showError(err, 'job-error');
    }
  }

  clear() {
    for (const e of [el('stage'), el('step'), el('loss'), el('job-error')]) e.textContent = '';
    el('progress-bar').value = 0;
    for (const img of [el('preview'), el('result-image')]) { img.hidden = true; img.removeAttribute('src'); }
    el('result-run').replaceChildren();
    el('result-objects').replaceChildren();
    el('result-seeds').replaceChildren();
  }

  state(s, error) {
    el('job-state').textContent = error ? `${s}: ${error}` : s;
  }

  // event shows one server-sent event (docs/serve-api.md lists the types).
  event(type, d) {
    switch (type) {
      case 'state':
        this.state(d.state, d.error);
        if (finished.has(d.state)) el('cancel').disabled = true; // nothing left to cancel
        break;
      case 'stage':
        el('stage').textContent = stageText(d);
        break;
      case 'step':
        el('stage').textContent = stageText(d);
        el('step').textContent = d.steps ? `step ${d.step}/${d.steps}` : '';
        el('progress-bar').value = d.fraction || 0;
        break;
      case 'loss':
        el('loss').textContent = `guidance loss ${Number(d.loss).toFixed(4)} (${stageText(d)}, step ${d.step}, iteration ${d.iteration})`;
        break;
      case 'preview':
        el('preview').src = `data:image/png;base64,${d.png}`;
        el('preview').hidden = false;
        break;
    }
  }

  // finish shows a finished job: its state, and a succeeded one's pictures.
  finish(job) {
    this.job = job;
    this.state(job.state, job.error && (job.error.message || job.error));
    if (job.state !== 'succeeded') return;
    el('progress-bar').value = 1;
    // A job of several images keeps each in a seed-<seed>/ folder (generate's
    // --batch-count rule): one button per folder chooses which is shown.
    const files = job.files || [];
    const folders = [...new Set(files.map((f) => (/^(seed-\d+\/)image\.png$/.exec(f) || [])[1]).filter(Boolean))];
    el('result-seeds').replaceChildren(...(folders.length > 1 ? folders : []).map((folder) => {
      const b = make('button', { type: 'button', text: folder.slice(0, -1).replace('-', ' ') });
      b.addEventListener('click', () => this.pictures(files, folder));
      return b;
    }));
    this.pictures(files, files.includes('image.png') || !folders.length ? '' : folders[0]);
  }

  // pictures shows the pictures of one folder of a job's files ('' for the
  // top level): the refined image-sdxl.png as the result where the SDXL
  // refiner made one, else image.png (an SD job's first picture where it
  // has neither), layout.png, regions.png and the rest beside it, and each
  // object's image, mask and attention.
  pictures(files, folder) {
    el('result-run').replaceChildren();
    el('result-objects').replaceChildren();
    const names = files.filter((f) => f.startsWith(folder)).map((f) => f.slice(folder.length));
    const top = names.filter((f) => !f.includes('/') && f.endsWith('.png'));
    const main = ['image-sdxl.png', 'image.png'].find((f) => top.includes(f)) || top[0];
    if (main) this.image(el('result-image'), folder + main);
    for (const name of top.filter((f) => f !== main)) {
      el('result-run').append(this.figure(folder + name, name.replace(/\.png$/, '')));
    }
    for (const [key, parts] of objectFiles(names)) {
      const row = make('div', { class: 'gallery' });
      for (const part of ['image', 'mask', 'attention']) {
        if (parts[part]) row.append(this.figure(folder + parts[part], part));
      }
      el('result-objects').append(make('h3', { text: key.replace(/^\d+-/, '').replaceAll('-', ' ') }), row);
    }
  }

  figure(name, caption) {
    const img = make('img', { alt: `${caption} of job ${this.job.id}` });
    this.image(img, name);
    return make('figure', {}, img, make('figcaption', { text: caption }));
  }

  image(img, name) {
    const id = this.job.id;
    fileURL(id, name).then((url) => {
      if (this.job.id !== id) return;
      img.src = url;
      img.hidden = false;
    }, (err) => showError(err, 'job-error'));
  }
}

// stageText names a stage as a person reads it: "object 2/3" for RFNet's
// per-object stage (object is absent outside it), "3 objects" for its
// single-object runs as one batch (stage "objects"), "image 2/4" for one
// image of several.
export function stageText(d) {
  let s = d.stage || '';
  if (s === 'objects' && d.objects) s = `${d.objects} objects`;
  if (Number.isInteger(d.object)) s += ` ${d.object + 1}` + (d.objects ? `/${d.objects}` : '');
  if (d.images > 1) s += `, image ${(d.image || 0) + 1}/${d.images}`;
  return s;
}

// objectFiles groups a job's objects/NN-name*.png files by object, in file
// order: NN-name.png is the object's image, -mask.png its mask and
// -attention.png its attention heatmap (the -overall- and -reference-attention
// pictures are left to the out-dir's index.html). The suffixes alone cannot
// tell an object named "a mask" from the mask of "a", so an object is a PNG
// whose -mask.png exists too, as the run writes every object's mask.
export function objectFiles(files) {
  const all = new Set(files);
  const objects = new Map();
  for (const f of files) {
    const m = /^objects\/(\d+-.+)\.png$/.exec(f);
    if (!m || !all.has(`objects/${m[1]}-mask.png`)) continue;
    const parts = { image: f, mask: `objects/${m[1]}-mask.png` };
    if (all.has(`objects/${m[1]}-attention.png`)) parts.attention = `objects/${m[1]}-attention.png`;
    objects.set(m[1], parts);
  }
  return objects;
}
