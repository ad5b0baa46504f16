// A job's server-sent events, read with fetch() rather than EventSource.
//
// Why fetch always: EventSource cannot send an Authorization header, so a
// server with --api-key would need a second code path; one reader for both
// cases is simpler and is the one the tests exercise. It also lets the page
// decide when to reconnect: the server closes the stream after a job's final
// state event, where EventSource would reconnect forever.
import { send } from './api.js';

const finalStates = new Set(['succeeded', 'failed', 'canceled']);

// follow reads /v1/jobs/{id}/events and calls onEvent(type, data) for each
// event until the job's final state event, and resolves with that event's
// data. When the stream breaks before then it reconnects with Last-Event-ID,
// so no event is seen twice. Aborting signal stops it.
export async function follow(id, onEvent, signal) {
  let last = 0;
  let failures = 0;
  for (;;) {
    try {
      const headers = last ? { 'Last-Event-ID': String(last) } : {};
      const res = await send('GET', `/v1/jobs/${encodeURIComponent(id)}/events`, undefined, { headers, signal });
      for await (const ev of parse(res.body)) {
        failures = 0;
        if (ev.id) last = Number(ev.id);
        const data = ev.data ? JSON.parse(ev.data) : {};
        onEvent(ev.type, data);
        if (ev.type === 'state' && finalStates.has(data.state)) return data;
      }
    } catch (err) {
      if (signal && signal.aborted) throw err;
      if (err.status && err.status < 500) throw err; // a 404 will not get better
      if (++failures > 5) throw err;
    }
    await new Promise((r) => setTimeout(r, 1000)); // the stream ended early: reconnect after a pause
  }
}

// parse yields the events of a text/event-stream body as {id, type, data}
// (the format of the HTML standard's server-sent events: fields up to a blank
// line, comment lines starting with ':', data lines joined with newlines).
export async function* parse(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { id: '', type: 'message', data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        if (buf[nl] === '\r' && nl === buf.length - 1) break; // a \n may follow in the next chunk
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (ev.data.length) yield { id: ev.id, type: ev.type, data: ev.data.join('\n') };
          ev = { id: ev.id, type: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'id') ev.id = value;
        else if (field === 'event') ev.type = value;
        else if (field === 'data') ev.data.push(value);
      }
    }
  } finally {
    await reader.cancel().catch(() => {}); // closes the connection when the caller stops early
  }
}
