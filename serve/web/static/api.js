// The server's HTTP API (docs/serve-api.md), with the API key when one is needed.
import { el } from './dom.js';

const keyName = 'rfnet-api-key';

// ApiError is an answer other than 2xx: the server's error.message and
// error.param (the field at fault, when one is).
export class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param || '';
  }
}

export function apiKey() { return sessionStorage.getItem(keyName) || ''; }

function headers(extra = {}) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// askKey shows the key dialog and resolves with what was typed, or '' when
// the dialog was dismissed (Escape). Concurrent 401s share one dialog, so the
// key is asked for once.
let asking = null;
function askKey() {
  if (asking) return asking;
  const dialog = el('key-dialog');
  const input = el('api-key');
  input.value = '';
  dialog.returnValue = '';
  asking = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      asking = null;
      // The form's submit button sets returnValue; Escape leaves it empty.
      const key = dialog.returnValue === 'use' ? input.value.trim() : '';
      if (key) sessionStorage.setItem(keyName, key);
      resolve(key);
    }, { once: true });
  });
  dialog.showModal();
  input.focus();
  return asking;
}

// send makes a request; a 401 asks for the key once and tries again with it.
// It resolves with the Response of a 2xx answer and rejects with ApiError.
// opts may carry extra headers and an AbortSignal.
export async function send(method, path, body, opts = {}) {
  const extra = { ...(opts.headers || {}) };
  if (body !== undefined) extra['Content-Type'] = 'application/json';
  const make = () => fetch(path, {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: opts.signal,
  });
  let res = await make();
  if (res.status === 401) {
    sessionStorage.removeItem(keyName);
    if (await askKey()) res = await make();
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function errorOf(res) {
  let message = `${res.status} ${res.statusText}`;
  let param = '';
  try {
    const e = (await res.json()).error;
    if (e && e.message) { message = e.message; param = e.param || ''; }
  } catch { /* not the JSON error shape: keep the status line */ }
  if (res.status === 401) message = `the API key was refused: ${message}`;
  return new ApiError(res.status, message, param);
}

export async function json(method, path, body) {
  return (await send(method, path, body)).json();
}

// file fetches one of a job's files (GET /v1/jobs/{id}/files/{name}).
export function file(id, name) {
  return send('GET', filePath(id, name));
}

function filePath(id, name) {
  return `/v1/jobs/${encodeURIComponent(id)}/files/${name.split('/').map(encodeURIComponent).join('/')}`;
}

// fileURL is a URL an <img> can show for a job's file. Without a key that is
// the file's own URL. With one, an <img> cannot send the Authorization header,
// so the file is fetched and turned into a data: URL (the page's CSP allows
// images from itself and data:, nothing else).
export async function fileURL(id, name) {
  if (!apiKey()) return filePath(id, name);
  const blob = await (await file(id, name)).blob();
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}
