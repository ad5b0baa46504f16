// The list of past jobs (GET /v1/jobs, newest first).
import { json } from './api.js';
import { el, make, showError } from './dom.js';

// refreshJobs lists the server's jobs; choosing one calls open(id).
export async function refreshJobs(open) {
  let jobs;
  try {
    jobs = (await json('GET', '/v1/jobs')).jobs || [];
  } catch (err) {
    showError(err, 'jobs-error');
    return;
  }
  el('jobs-error').textContent = '';
  el('jobs-list').replaceChildren(...jobs.map((job) => {
    const req = job.request || {};
    const prompt = req.prompt || (req.plan && req.plan.prompt) || '';
    const when = job.created ? new Date(job.created).toLocaleString() : '';
    const b = make('button', { type: 'button', class: 'job', 'data-job': job.id },
      make('span', { class: `state ${job.state}`, text: job.state }), ` ${job.kind} `,
      make('span', { class: 'prompt', text: prompt }), make('span', { class: 'count', text: ` ${when}` }));
    b.addEventListener('click', () => open(job.id));
    return make('li', {}, b);
  }));
}
