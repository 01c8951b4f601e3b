// The softphone page: a thin view over the Phone SDK (phone.js).
import { EVENTS, Phone, fetchToken } from '/static/phone.js';
import { callTime, installExtras, shown } from '/static/softphone_extras.js';

const $ = (id) => document.getElementById(id);
const config = await fetch('/config').then((r) => r.json()).catch(() => ({}));
const domain = config.ewebrtc_domain || 'ivrbot.local';
const phone = new Phone({ rtcUri: config.ewebrtc_uri || '/RTC/v1', domain, name: 'softphone' });
window.softphone = { phone, config }; // for the browser console (and the tests)
document.querySelectorAll('.domain').forEach((el) => { el.textContent = domain; });

// the API key a gateway outside development mode wants for tokens: asked for when /config
// says so (or a token request is refused), kept in this tab's sessionStorage only
const API_KEY = 'ivrbot.softphone.apiKey';
$('api-key').value = sessionStorage.getItem(API_KEY) || '';
$('api-key-row').hidden = config.development_mode !== false && !$('api-key').value;

// a refused POST /tokens, as one line saying what to give (the gateway answered)
function tokenRefusal(error, apiKey) {
  const why = error.reason ? ` (${error.reason})` : '';
  if (![401, 403].includes(error.status)) return `Could not get a token from this gateway: ${error.message}`;
  if (apiKey) return `${error.status}: this gateway refused the API key${why}: enter one of its IVRBOT_API_KEYS`;
  return `${error.status}: this gateway needs an API key: enter one of its IVRBOT_API_KEYS under API key`;
}

// what the user typed -> (user id, app scope of the token to ask for)
function identity(user) {
  user = user.trim();
  if (user.includes('@')) return { userId: user, scope: 'ACCOUNT_ID' };
  const digits = user.replace(/[^0-9]/g, '');
  if (/^[0-9()+\-. ]+$/.test(user) && (digits.length === 10 || (digits.length === 11 && digits[0] === '1'))) {
    return { userId: `vtn:${digits.slice(-10)}`, scope: 'VIRTUAL_NUMBER' };
  }
  return { userId: `${user}@${domain}`, scope: 'ACCOUNT_ID' };
}

function log(text) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').prepend(item);
  while ($('log').children.length > 100) $('log').lastChild.remove();
}

function showMessage(text) {
  $('message').textContent = text;
  $('message').hidden = !text;
}

function setStatus(text, state) {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

function render() {
  const loggedIn = phone.loggedIn;
  $('login-panel').hidden = loggedIn;
  $('phone-panel').hidden = !loggedIn;
  const call = phone.currentCall;
  const pending = phone.calls.find((c) => c.direction === 'incoming' && c.state === 'created');
  $('incoming').hidden = !pending;
  $('incoming-from').textContent = pending ? shown(pending.peer) : '';
  $('incoming-what').textContent = pending && pending.breed === 'conference' ? 'Conference invitation from' : 'Incoming call from';
  const live = phone.calls.filter((c) => !['created', 'disconnected'].includes(c.state));
  const established = call && ['connected', 'held'].includes(call.state);
  $('dial').disabled = Boolean(call);
  $('add-call').disabled = !established || live.length >= 2;
  $('switch').disabled = live.length < 2;
  $('transfer').disabled = live.length < 2 || live.some((c) => c.breed === 'conference');
  $('move').disabled = !call || call.state !== 'connected' || call.breed === 'conference';
  $('upgrade').disabled = !call || call.state !== 'connected' || call.mediaType === 'video' || call.breed === 'conference';
  $('downgrade').disabled = !call || call.state !== 'connected' || call.mediaType !== 'video';
  const hosted = phone.calls.find((c) => c.breed === 'conference' && c.hosting && ['connecting', 'connected', 'held'].includes(c.state));
  $('conf-start').disabled = Boolean(hosted) || live.length >= 2;
  $('conf-invite').disabled = !hosted || hosted !== call || call.state !== 'connected';
  $('conf-end').disabled = !phone.calls.some((c) => c.breed === 'conference' && ['connecting', 'connected', 'held'].includes(c.state));
  const people = hosted ? Object.values(hosted.participants) : [];
  $('participants').hidden = !hosted;
  $('participants').replaceChildren(...people.map((p) => {
    const li = document.createElement('li');
    li.dataset.status = p.status;
    li.textContent = `${shown(p.participant)}: ${p.status}`;
    return li;
  }));
  $('modification').hidden = !call || !call.pendingMod;
  $('modification-to').textContent = call && call.pendingMod ? call.pendingMod.mediaType : '';
  $('hangup').disabled = !call || !['connecting', 'connected', 'held'].includes(call.state);
  $('hold').disabled = !call || !['connected', 'held'].includes(call.state);
  $('hold').textContent = call && call.state === 'held' ? 'Resume' : 'Hold';
  $('hold').setAttribute('aria-pressed', String(Boolean(call && call.state === 'held')));
  $('mute').disabled = !call || !['connected', 'held'].includes(call.state);
  $('mute').textContent = call && call.muted ? 'Unmute' : 'Mute';
  $('mute').setAttribute('aria-pressed', String(Boolean(call && call.muted)));
  const rows = phone.calls.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.index = c.index;
    const peer = c.breed === 'conference' && c.hosting ? 'conference (you host)' : shown(c.peer);
    for (const [value, cls] of [[c.index, ''], [peer, 'peer'], [c.direction, ''], [c.state, 'state'], [callTime(c), 'time']]) {
      const td = document.createElement('td');
      td.textContent = value;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  });
  $('calls').tBodies[0].replaceChildren(...rows);
  $('no-calls').hidden = rows.length > 0;
}

// the interesting part of an event's payload, for the event log
function describe(p) {
  if (!p) return '';
  const peer = p.generator === 'initiator' ? p.to : p.from;
  const parts = [
    p.index !== undefined ? `call ${p.index}` : '', p.newState ? `${p.oldState} -> ${p.newState}` : '',
    p.tone ? `tone ${p.tone}` : '', p.message || '', p.index === undefined ? p.from || p.to || '' : '',
    p.newState || p.tone || p.message ? '' : peer || '',
  ].filter(Boolean);
  return parts.length ? `  ${parts.join('  ')}` : '';
}

for (const event of EVENTS) {
  phone.on(event, (payload) => {
    if (event === 'error') return;
    log(`${event}${describe(payload)}`);
    render();
  });
}
phone.on('error', (e) => {
  log(`error ${e.ErrorCode} (${e.JSMethod}): ${e.ErrorMessage}`);
  showMessage(`Error ${e.ErrorCode} in ${e.JSMethod}: ${e.ErrorMessage}`);
  render();
});
phone.on('session:ready', (ready) => {
  showMessage('');
  $('me').textContent = ready.userid;
  setStatus('logged in', 'in');
});
phone.on('session:disconnected', () => setStatus('logged out', 'out'));
phone.on('session:expired', () => { setStatus('session expired', 'out'); showMessage('The session expired: log in again.'); });
// no `error` event when the gateway does not answer (at login too): this one says so
const UNREACHABLE = 'Gateway unreachable: it did not answer. Check that it is running, then try again.';
phone.on('gateway:unreachable', () => {
  setStatus('gateway unreachable', 'unreachable');
  showMessage(UNREACHABLE);
});
phone.on('connectivity:on', () => {
  setStatus('logged in', 'in');
  if ($('message').textContent === UNREACHABLE) showMessage('');
});
phone.on('call:rejected', (d) => showMessage(d.message ? `Call rejected: ${d.message}` : ''));
phone.on('call:disconnected', (d) => { if (d.message && d.message !== 'Call terminated') showMessage(`Call ended: ${d.message}`); });
phone.on('call:incoming', () => showMessage(''));

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showMessage('');
  const { userId, scope } = identity($('user').value);
  $('login').disabled = true;
  try {
    let token = $('token').value.trim();
    if (!token) {
      const apiKey = $('api-key').value.trim();
      try {
        token = await fetchToken(location.origin, scope, { apiKey });
      } catch (e) {
        showMessage(tokenRefusal(e, apiKey));
        if ([401, 403].includes(e.status)) $('api-key-row').hidden = false;
        return;
      }
      if (apiKey) sessionStorage.setItem(API_KEY, apiKey);
    }
    await phone.login({ token, userId });
  } finally {
    $('login').disabled = false;
    render();
  }
});

$('logout').addEventListener('click', () => phone.logout());

$('dial-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  showMessage('');
  phone.dial({ destination: $('destination').value, mediaType: 'audio' });
});

$('keypad').addEventListener('click', (ev) => {
  const key = ev.target.closest('button[data-key]');
  if (!key) return;
  const call = phone.currentCall;
  if (call && call.state === 'connected') phone.sendDTMFTone({ input: key.dataset.key });
  else $('destination').value += key.dataset.key;
});

function pendingCall() {
  return phone.calls.find((c) => c.direction === 'incoming' && c.state === 'created') || null;
}
$('answer').addEventListener('click', () => {
  // with another call in progress, that one goes on hold (and resumes when this one ends)
  const busy = phone.calls.some((c) => !(c.direction === 'incoming' && c.state === 'created'));
  const options = busy ? { action: 'hold' } : {};
  if (pendingCall()?.breed === 'conference') phone.joinConference(options);
  else phone.answer(options);
});
$('reject').addEventListener('click', () => {
  if (pendingCall()?.breed === 'conference') phone.rejectConference();
  else phone.reject();
});
$('add-call').addEventListener('click', () => {
  showMessage('');
  phone.addCall({ destination: $('destination').value, mediaType: 'audio' });
});
$('switch').addEventListener('click', () => phone.switchCall());
$('transfer').addEventListener('click', () => phone.transfer());
$('move').addEventListener('click', () => phone.move());
$('upgrade').addEventListener('click', () => phone.upgrade());
$('downgrade').addEventListener('click', () => phone.downgrade());
$('accept-mod').addEventListener('click', () => phone.acceptModification());
$('reject-mod').addEventListener('click', () => phone.rejectModification());
$('conf-start').addEventListener('click', () => phone.startConference({ mediaType: 'audio' }));
$('conf-invite').addEventListener('click', () => phone.addParticipant($('destination').value));
$('conf-end').addEventListener('click', () => phone.endConference());
$('hangup').addEventListener('click', () => {
  const call = phone.currentCall;
  if (call && call.direction === 'outgoing' && call.state === 'connecting') phone.cancel();
  else phone.hangup();
});
$('hold').addEventListener('click', () => {
  const call = phone.currentCall;
  if (call && call.state === 'held') phone.resume();
  else phone.hold();
});
$('mute').addEventListener('click', () => {
  const call = phone.currentCall;
  if (call && call.muted) phone.unmute();
  else phone.mute();
});

installExtras(phone, { render, log });
render();
document.body.dataset.ready = 'true';
