// The page of rfnet-native serve: wires the forms to the API.
import { json, file } from './api.js';
import { el, clearErrors, showError } from './dom.js';
import { Editor } from './editor.js';
import { JobView } from './job.js';
import { refreshJobs } from './jobs.js';

const editor = new Editor();
const view = new JobView(() => refreshJobs(openJob));

// busy disables a button while its request runs, so it is not sent twice.
async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

el('plan-form').addEventListener('submit', (e) => {
  e.preventDefault();
  clearErrors();
  const body = { prompt: el('prompt').value };
  if (el('planner').value) body.planner = el('planner').value;
  busy(el('plan-button'), async () => {
    try {
      editor.load(await json('POST', '/v1/rfnet/plan', body));
    } catch (err) {
      showError(err, 'plan-error');
    }
  });
});

// number is an input's value as a number, or undefined when it is empty (the
// server's default then applies).
function number(input) {
  const v = input.value.trim();
  return v === '' ? undefined : Number(v);
}

el('job-form').addEventListener('submit', (e) => {
  e.preventDefault();
  clearErrors();
  const prompt = el('prompt').value;
  const request = editor.hasPlan() ? { plan: editor.plan(prompt) } : { prompt };
  const settings = { seed: el('seed'), steps: el('steps'), width: el('width'), height: el('height'), preview_every: el('preview-every') };
  for (const [field, input] of Object.entries(settings)) {
    const v = number(input);
    if (v !== undefined) request[field] = v;
  }
  busy(el('generate'), async () => {
    try {
      await view.start(request);
      refreshJobs(openJob);
    } catch (err) {
      showError(err, 'job-error');
    }
  });
});

// openJob shows a job of the list and, when it has a plan.json, loads that
// plan into the editor so it can be changed and run again.
async function openJob(id) {
  clearErrors();
  try {
    await view.open(id);
    const job = view.job;
    const req = job.request || {};
    el('prompt').value = req.prompt || (req.plan && req.plan.prompt) || el('prompt').value;
    // A job of several images has a plan.json in each seed-<seed>/ folder, all alike.
    const plan = (job.files || []).find((f) => /^(seed-\d+\/)?plan\.json$/.test(f));
    if (plan) editor.load(await (await file(id, plan)).json());
  } catch (err) {
    showError(err, 'jobs-error');
  }
}

el('refresh-jobs').addEventListener('click', () => refreshJobs(openJob));
refreshJobs(openJob);
