// Small DOM helpers. Every element the scripts look up by id goes through el(),
// so that web's Go test can check each of those ids against index.html.

export function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page: no element #${id}`);
  return e;
}

// make builds an element: attrs are set as attributes (text sets textContent),
// children are appended in order.
export function make(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children);
  return e;
}

// fieldError is the error slot of the field that an API error's param names:
// the element with that data-param, else the one of the longest prefix of it
// (plan.objects[1].box falls back to plan.objects[1], then plan.objects), else
// the fallback slot (by id) of the action that failed.
function fieldError(param, fallbackId) {
  for (let p = param; p;) {
    const field = document.querySelector(`[data-param="${CSS.escape(p)}"]`);
    const slot = field && field.querySelector('.field-error');
    if (slot) return { slot, field };
    const shorter = p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
    if (shorter === p) break;
    p = shorter;
  }
  return { slot: el(fallbackId), field: null };
}

// showError puts an error next to the field it names (see fieldError), marks
// that field invalid, and moves focus to it so a keyboard user lands on it.
export function showError(err, fallbackId) {
  const { slot, field } = fieldError(err.param || '', fallbackId);
  // Next to its own field the message needs no name; elsewhere it says which field.
  const own = field && field.dataset.param === err.param;
  slot.textContent = err.param && !own ? `${err.param}: ${err.message}` : err.message;
  if (field) {
    field.classList.add('invalid');
    const input = field.querySelector('input, textarea, select');
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
  }
}

// clearErrors empties every error slot and invalid mark of the page.
export function clearErrors() {
  for (const s of document.querySelectorAll('.field-error')) s.textContent = '';
  for (const f of document.querySelectorAll('.invalid')) f.classList.remove('invalid');
  for (const i of document.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}
