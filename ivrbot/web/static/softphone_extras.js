// The softphone's helpers around the Phone: numbers written one way, call timers, the call
// history (kept in this browser), the bots' numbers to click, a level meter of what you
// hear, and keyboard keys.

import { formatNumber } from '/static/phone.js';

const $ = (id) => document.getElementById(id);
const HISTORY_KEY = 'ivrbot.softphone.history';
const ENDINGS = {
  'call:disconnected': 'ended', 'call:canceled': 'canceled', 'call:rejected': 'rejected',
  'call:transferred': 'transferred', 'call:moved': 'moved', 'conference:ended': 'conference ended',
  'conference:canceled': 'conference canceled', 'conference:invitation-rejected': 'declined',
};
const connectedAt = new Map(); // call index -> when it connected (ms)

/** A party as people write it: numbers as +1 (555) 000-1000, names without sip:. */
export function shown(uri) {
  if (!uri) return '';
  const bare = String(uri).replace(/^(sip|tel|vtn):/, '');
  const digits = bare.replace(/^\+/, '');
  if (/^[0-9]{10,11}$/.test(digits)) {
    try { return formatNumber(digits.length === 10 ? `1${digits}` : digits); } catch { return bare; }
  }
  return bare;
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** How long `call` has been connected ('' before it connects). */
export function callTime(call) {
  const since = connectedAt.get(call.index);
  return since ? clock(Date.now() - since) : '';
}

function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]'); } catch { return []; }
}

function renderHistory() {
  const items = loadHistory().map((h) => {
    const li = document.createElement('li');
    li.dataset.outcome = h.outcome;
    const time = new Date(h.at).toLocaleTimeString();
    const arrow = h.direction === 'outgoing' ? '→' : '←';
    li.textContent = `${time} ${arrow} ${h.peer}  ${h.outcome}${h.duration ? `  ${h.duration}` : ''}`;
    li.title = 'click: put this number in the dial box';
    li.onclick = () => { $('destination').value = h.dial; };
    return li;
  });
  $('history').replaceChildren(...items);
}

function remember(event, payload) {
  const outgoing = payload.generator === 'initiator';
  const raw = String((outgoing ? payload.to : payload.from) || payload.invitee || '');
  const since = connectedAt.get(payload.index);
  connectedAt.delete(payload.index);
  const entry = {
    at: Date.now(), direction: outgoing ? 'outgoing' : 'incoming', peer: shown(raw) || 'conference',
    dial: raw.replace(/^(sip|tel):\+?1?(?=[0-9]{10}$)|^(sip|tel):/, ''),
    outcome: payload.message && ENDINGS[event] === 'ended' ? `ended: ${payload.message}` : ENDINGS[event],
    duration: since ? clock(Date.now() - since) : '',
  };
  localStorage.setItem(HISTORY_KEY, JSON.stringify([entry, ...loadHistory()].slice(0, 50)));
  renderHistory();
}

async function loadBots(phone, dial) {
  const resp = await fetch('/ivrbot/bots', { headers: { Authorization: `Bearer ${phone.token}` } }).catch(() => null);
  if (!resp || !resp.ok) { $('bots-panel').hidden = true; return; }
  const { bots } = await resp.json();
  $('bots').replaceChildren(...bots.map((bot) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = bot.flow;
    name.title = bot.description || '';
    const call = document.createElement('button');
    call.type = 'button';
    call.dataset.flow = bot.flow;
    call.textContent = shown(bot.number);
    call.title = `call ${bot.flow}`;
    call.onclick = () => dial(bot.number);
    li.append(name, call);
    return li;
  }));
  $('bots-panel').hidden = bots.length === 0;
}

// The level (dBFS) of what the current call brings in, on the meter.
function meter(phone) {
  const state = { ctx: null, stream: null, source: null, analyser: null };
  const samples = new Float32Array(2048);
  setInterval(() => {
    const call = phone.currentCall;
    if (!call || !call.remoteStream.getAudioTracks().length) { $('level').value = -70; return; }
    if (!state.ctx) state.ctx = new AudioContext();
    if (state.stream !== call.remoteStream) {
      if (state.source) state.source.disconnect();
      state.source = state.ctx.createMediaStreamSource(call.remoteStream);
      state.analyser = state.ctx.createAnalyser();
      state.analyser.fftSize = samples.length;
      state.source.connect(state.analyser);
      state.stream = call.remoteStream;
    }
    state.analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    $('level').value = Math.max(-70, 10 * Math.log10(sum / samples.length + 1e-12));
  }, 150);
  document.addEventListener('click', () => state.ctx && state.ctx.resume(), { capture: true });
}

function keyboard(phone) {
  document.addEventListener('keydown', (ev) => {
    const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey || $('phone-panel').hidden) return;
    const call = phone.currentCall;
    if (/^[0-9*#]$/.test(ev.key)) {
      ev.preventDefault();
      $(`keypad`).querySelector(`button[data-key="${ev.key}"]`).click();
    } else if (ev.key === 'Backspace' && !call) {
      $('destination').value = $('destination').value.slice(0, -1);
    } else if (ev.key === 'Enter' && !call) {
      ev.preventDefault();
      $('dial-form').requestSubmit();
    } else if (ev.key === 'Escape' && !$('hangup').disabled) {
      $('hangup').click();
    }
  });
}

export function installExtras(phone, { render }) {
  for (const event of ['call:connected', 'conference:connected']) {
    phone.on(event, (d) => { connectedAt.set(d.index, Date.now()); render(); });
  }
  for (const event of Object.keys(ENDINGS)) phone.on(event, (d) => remember(event, d));
  const dial = (number) => {
    $('destination').value = number;
    if (!phone.currentCall) $('dial-form').requestSubmit();
  };
  phone.on('session:ready', () => loadBots(phone, dial));
  $('clear-history').addEventListener('click', () => { localStorage.removeItem(HISTORY_KEY); renderHistory(); });
  setInterval(() => {
    for (const call of phone.calls) {
      const cell = document.querySelector(`#calls tr[data-index="${call.index}"] td.time`);
      if (cell) cell.textContent = callTime(call);
    }
  }, 1000);
  renderHistory();
  meter(phone);
  keyboard(phone);
  const wanted = new URLSearchParams(location.hash.slice(1)).get('dial');  // from the dashboard
  if (wanted) $('destination').value = wanted;
}
