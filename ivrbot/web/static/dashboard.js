// The operator's dashboard: log in with the gateway's OAuth client credentials (or an
// operator token), then follow bots, live calls, flows and call records over a WebSocket.

import { drawFlow, drawLegend, fit, highlight } from '/static/flowgraph.js';
import { drawCampaigns } from '/static/campaigns.js';
import { listen, listeningTo, stopListening } from '/static/listen.js';
import { shown } from '/static/softphone_extras.js'; // numbers as +1 (555) 000-1010

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = 'ivrbot.dashboard.token';
const state = { token: sessionStorage.getItem(TOKEN_KEY) || '', ws: null, board: null,
  graphs: new Map(), shownFlow: '', searching: '', clockSkew: 0, ticks: 0 };

function show(message) {
  $('#message').textContent = message;
  $('#message').hidden = !message;
}

function setStatus(kind, text) {
  $('#status').dataset.state = kind;
  $('#status').textContent = text;
}

async function api(path) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (resp.status === 401 || resp.status === 403) {
    const body = await resp.json().catch(() => ({}));
    logout(`Not allowed (${resp.status}): ${body.error || 'log in again'}`);
    throw new Error('refused');
  }
  return resp;
}

async function operatorToken(clientId, secret) {
  const resp = await fetch('/tokens', {
    method: 'POST',
    headers: { Authorization: `Basic ${btoa(`${clientId}:${secret}`)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ app_scope: 'ACCOUNT_ID' }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(`the gateway refused these credentials (HTTP ${resp.status})`);
  return body.access_token;
}

async function login(event) {
  event.preventDefault();
  show('');
  $('#login').disabled = true;
  try {
    const pasted = $('#token').value.trim();
    state.token = pasted || await operatorToken($('#client-id').value.trim(), $('#client-secret').value);
    await start();
  } catch (exc) {
    if (exc.message !== 'refused') show(`Could not log in: ${exc.message}`);
  } finally {
    $('#login').disabled = false;
  }
}

async function start() {
  const resp = await api('/ivrbot/dashboard');  // refused: back to the login form
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $('#login-panel').hidden = true;
  $('#board').hidden = false;
  $('#logout').hidden = false;
  render(await resp.json());
  connect();
  loadCampaigns();
}

function logout(message = '') {
  stopListening();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = '';
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  $('#board').hidden = true;
  $('#logout').hidden = true;
  $('#login-panel').hidden = false;
  setStatus('out', 'logged out');
  show(message);
}

function connect() {
  const url = new URL('/ivrbot/live', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('access_token', state.token);
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => setStatus('live', 'live');
  ws.onmessage = (msg) => render(JSON.parse(msg.data));
  ws.onclose = () => {
    setStatus('offline', 'offline: reconnecting');
    if (state.ws === ws) setTimeout(() => state.token && start().catch(() => {}), 2000);
  };
}

function cell(row, text, className = '') {
  const td = row.insertCell();
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Who called whom: "from" and "to" lines (an outbound call is from the bot's number).
function partiesCell(row, call) {
  const td = row.insertCell();
  td.className = 'parties';
  for (const side of ['from', 'to']) {
    const line = document.createElement('span');
    line.className = `party ${side}`;
    line.append(Object.assign(document.createElement('small'), { textContent: side }), shown(call[side] || ''));
    td.append(line);
  }
  return td;
}

function directionCell(row, direction) {
  const td = row.insertCell();
  td.className = 'direction';
  if (direction) {
    td.append(Object.assign(document.createElement('span'), {
      className: `badge ${direction}`, textContent: direction === 'outbound' ? '↗ outbound' : '↘ inbound' }));
  }
  return td;
}

function inputText(input) {
  if (!input) return '';
  return `${input.step}: ${input.value || input.outcome}`;
}

function render(board) {
  state.board = board;
  state.clockSkew = Date.now() / 1000 - board.now;
  renderBots(board.bots);
  renderCalls(board.calls);
  if (!state.searching) renderRecords(board.records);
  renderFlowPicker(board.bots);
  renderSip(board.sip);
}

function renderSip(sip) {  // null: this gateway runs no SIP connector
  $('#sip-panel').hidden = !sip;
  if (!sip) return;
  $('#sip-transports').textContent = Object.entries(sip.transports || { udp: sip.port })
    .map(([kind, port]) => `${kind} ${port}`).join(', ');
  const regs = $('#sip-registrations tbody');
  regs.replaceChildren();
  for (const reg of sip.registrations) {
    const row = regs.insertRow();
    row.dataset.account = reg.account;
    cell(row, reg.account);
    cell(row, reg.active ? 'yes' : 'no', 'registered');
    cell(row, reg.code ? `${reg.code} ${reg.reason}` : reg.reason);
  }
  const trunks = $('#sip-trunks tbody');
  trunks.replaceChildren();
  for (const trunk of sip.trunks) {
    const row = trunks.insertRow();
    cell(row, trunk.name);
    cell(row, trunk.allow.join(', '));
    cell(row, trunk.uri || '');
  }
  $('#sip-calls').textContent = String(sip.calls.length);
  $('#sip-rejected').textContent = String(sip.rejected);
}

function renderBots(bots) {
  const body = $('#bots tbody');
  body.replaceChildren();
  for (const bot of bots) {
    const row = body.insertRow();
    row.dataset.flow = bot.flow;
    cell(row, bot.flow);
    const numbers = cell(row, '', 'numbers');
    for (const number of bot.numbers) {
      const a = document.createElement('a');
      a.href = `/softphone#dial=${encodeURIComponent(number)}`;
      a.target = '_blank';
      a.textContent = shown(number);
      numbers.append(a);
    }
    cell(row, bot.problem ? `${bot.state}: ${bot.problem}` : bot.state, 'state');
    cell(row, bot.max_calls ? `${bot.calls} / ${bot.max_calls}` : '');
  }
}

function renderCalls(calls) {
  const body = $('#calls tbody');
  body.replaceChildren();
  for (const call of calls) {
    const row = body.insertRow();
    row.dataset.id = call.id;
    row.dataset.flow = call.flow;
    row.dataset.started = call.started_at;
    partiesCell(row, call.from !== undefined ? call : { from: call.caller, to: call.callee });
    row.dataset.direction = call.direction || '';
    cell(row, call.flow || '(between people)');
    cell(row, call.step || call.state || '', 'step');
    cell(row, duration(Date.now() / 1000 - state.clockSkew - call.started_at), 'duration');
    cell(row, inputText(call.last_input));
    listenCell(row, call.call);
    if (call.flow) row.onclick = () => showFlow(call.flow);
  }
  if (listeningTo() && !calls.some((c) => c.call === listeningTo())) stopListening();
  document.body.dataset.listening = listeningTo();
  $('#no-calls').hidden = calls.length > 0;
  $('#live-count').textContent = String(calls.length);
  const live = calls.find((c) => c.flow);
  if (live && !state.shownFlow) showFlow(live.flow);
  else markSteps();
}

function listenCell(row, callId) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'listen';
  button.disabled = !callId;
  button.textContent = callId && listeningTo() === callId ? 'Stop' : 'Listen';
  button.onclick = async (event) => {
    event.stopPropagation();  // not the row's click (which shows its flow)
    button.disabled = true;
    try {
      if (listeningTo() === callId) await stopListening();
      else await listen(callId, state.token);
      show('');
    } catch (exc) {
      show(`Could not listen in: ${exc.message}`);
    }
    button.disabled = false;
    showListening();
  };
  row.dataset.call = callId || '';
  row.insertCell().append(button);
}

function showListening() {  // after a click, or when the gateway ended the listening
  document.body.dataset.listening = listeningTo();
  for (const b of document.querySelectorAll('#calls button.listen')) {
    b.textContent = listeningTo() && b.closest('tr').dataset.call === listeningTo() ? 'Stop' : 'Listen';
  }
}
document.addEventListener('listening-changed', showListening);

function tick() {  // the durations count up between messages; campaigns every 5 s
  if (state.token && ++state.ticks % 5 === 0) loadCampaigns();
  for (const row of document.querySelectorAll('#calls tbody tr')) {
    const since = Number(row.dataset.started);
    row.querySelector('.duration').textContent = duration(Date.now() / 1000 - state.clockSkew - since);
  }
}

function renderRecords(records) {
  const body = $('#records tbody');
  body.replaceChildren();
  for (const record of records) {
    const row = body.insertRow();
    row.dataset.id = record.id;
    row.dataset.direction = record.direction;
    cell(row, new Date(record.started_at * 1000).toLocaleString());
    directionCell(row, record.direction);
    cell(row, shown(record.from || ''), 'from');
    cell(row, shown(record.to || ''), 'to');
    cell(row, record.flow);
    cell(row, record.error ? `${record.outcome}: ${record.error}` : record.outcome, 'outcome');
    cell(row, record.path.join(' → '), 'path');
    const inputs = cell(row, record.inputs.map(inputText).join('; '), 'inputs');
    if (record.prompts.length) inputs.title = `prompts: ${record.prompts.join(' | ')}`;
    const files = cell(row, '', 'recordings');
    for (const file of record.recordings) {
      const play = document.createElement('button');
      play.type = 'button';
      play.textContent = `▶ ${file.name}`;
      play.onclick = () => playRecording(files, record.id, file.n, play);
      files.append(play);
    }
  }
  $('#no-records').hidden = records.length > 0;
}

// The file comes with the operator's token (an <audio src> could not send it), as a blob.
async function playRecording(box, id, n, button) {
  button.disabled = true;
  const resp = await api(`/ivrbot/records/${encodeURIComponent(id)}/recordings/${n}`);
  if (!resp.ok) { show(`Recording ${n} of ${id}: ${(await resp.json()).error}`); return; }
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.dataset.record = id;
  audio.src = URL.createObjectURL(await resp.blob());
  button.replaceWith(audio);
  await audio.play().catch(() => {});
}

let searchTimer = null;
function search() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    state.searching = $('#search').value.trim();
    if (!state.searching) { renderRecords(state.board.records); return; }
    const resp = await api(`/ivrbot/records?limit=100&q=${encodeURIComponent(state.searching)}`);
    renderRecords((await resp.json()).records);
  }, 250);
}

function renderFlowPicker(bots) {
  const pick = $('#flow-pick');
  const names = bots.filter((b) => b.state !== 'not served').map((b) => b.flow);
  if ([...pick.options].map((o) => o.value).join() !== names.join()) {
    pick.replaceChildren(...names.map((n) => new Option(n, n)));
    if (state.shownFlow) pick.value = state.shownFlow;
  }
  if (!state.shownFlow && names.length) showFlow(names[0]);
}

async function showFlow(name) {
  state.shownFlow = name;
  $('#flow-pick').value = name;
  let graph = state.graphs.get(name);
  if (!graph) {
    const resp = await api(`/ivrbot/flows/${encodeURIComponent(name)}/graph`);
    if (!resp.ok) return;
    graph = await resp.json();
    state.graphs.set(name, graph);
  }
  if (state.shownFlow !== name) return;
  drawFlow($('#graph'), graph);
  drawLegend($('#legend'), graph);
  markSteps();
}

function markSteps() {
  const calls = (state.board?.calls || []).filter((c) => c.flow === state.shownFlow && c.step);
  highlight($('#graph'), new Set(calls.map((c) => c.step)));
}

async function loadCampaigns() {
  const resp = await api('/ivrbot/campaigns').catch(() => null);
  const campaigns = resp && resp.ok ? (await resp.json()).campaigns || [] : [];
  $('#campaigns-panel').hidden = campaigns.length === 0;  // none here (or none yet)
  drawCampaigns($('#campaigns'), campaigns);
}

$('#login-form').addEventListener('submit', login);
$('#logout').addEventListener('click', () => logout());
$('#search').addEventListener('input', search);
$('#flow-pick').addEventListener('change', (e) => showFlow(e.target.value));
let resizeTimer = null;
window.addEventListener('resize', () => {  // rescale now; lay out again for the new width
  fit($('#graph'));
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => state.shownFlow && showFlow(state.shownFlow), 250);
});
setInterval(tick, 1000);
window.dashboard = state;
if (state.token) start().catch(() => {});
document.body.dataset.ready = 'true';
