// The dashboard's webhooks panel: deliveries so far and the latest failures
// (GET /ivrbot/webhooks, every 5 s with the operator's token the dashboard keeps). Hidden
// until this gateway has sent a webhook.

const TOKEN_KEY = 'ivrbot.dashboard.token';  // where dashboard.js keeps the operator's token
const EVERY_MS = 5000;

function panel() {
  let box = document.getElementById('webhooks-panel');
  if (box) return box;
  box = document.createElement('section');
  box.id = 'webhooks-panel';
  box.className = 'panel wide';
  box.hidden = true;
  const title = document.createElement('h2');
  title.textContent = 'Webhooks ';
  const count = Object.assign(document.createElement('span'), { id: 'webhooks-failed', className: 'count' });
  title.append(count);
  const summary = Object.assign(document.createElement('p'), { id: 'webhooks-summary', className: 'hint' });
  const table = Object.assign(document.createElement('table'), { id: 'webhooks-failures' });
  table.createTHead().insertRow().append(...['Time', 'Event', 'URL', 'Problem', 'Tries']
    .map((h) => Object.assign(document.createElement('th'), { textContent: h })));
  table.createTBody();
  box.append(title, summary, table);
  document.getElementById('board').append(box);
  return box;
}

export function drawWebhooks(status) {
  const box = panel();
  const sent = status.delivered + status.failed + status.pending;
  box.hidden = sent === 0;
  const failed = document.getElementById('webhooks-failed');
  failed.textContent = `${status.failed} failed`;
  failed.style.background = status.failed ? '#c0392b' : '';
  failed.style.color = status.failed ? '#fff' : '';
  document.getElementById('webhooks-summary').textContent =
    `${status.delivered} delivered, ${status.failed} failed, ${status.pending} waiting, ` +
    `${status.retried} retries; ${status.signed ? 'signed' : 'NOT signed: set IVRBOT_WEBHOOK_SECRET'}`;
  const body = document.querySelector('#webhooks-failures tbody');
  body.replaceChildren();
  for (const f of status.failures || []) {
    const row = body.insertRow();
    for (const value of [f.at.replace('T', ' ').replace('+00:00', ' UTC'), f.event, f.url, f.problem, f.tries]) {
      row.insertCell().textContent = String(value);
    }
  }
  document.getElementById('webhooks-failures').hidden = !(status.failures || []).length;
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const board = document.getElementById('board');
  if (!token || !board || board.hidden) return;
  const resp = await fetch('/ivrbot/webhooks', { headers: { Authorization: `Bearer ${token}` } })
    .catch(() => null);
  if (resp && resp.ok) drawWebhooks(await resp.json());
}

setInterval(() => refresh().catch(() => {}), EVERY_MS);
setTimeout(() => refresh().catch(() => {}), 500);
