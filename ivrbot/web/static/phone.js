// ivrbot Phone SDK for browsers: the JavaScript twin of ivrbot.phone (spec/phone-api.md).
//
//   import { Phone } from '/static/phone.js';
//   const phone = new Phone();                       // the gateway that served the page
//   phone.on('call:incoming', () => phone.answer());
//   phone.on('error', (e) => console.log(e.ErrorCode, e.ErrorMessage));
//   await phone.login({ token, userId: 'alice@ivrbot.local' });
//   await phone.dial({ destination: '5550001000', mediaType: 'audio' });
//
// Methods never throw for caller mistakes: they publish an `error` event carrying the spec's
// error object ({JSObject, JSMethod, ErrorCode, ErrorMessage, ...}) and resolve to undefined.
// Two gateway failures publish another event instead of `error` (and resolve to undefined
// too): the session is gone (404 SVC8514) -> `session:expired`; no answer from the gateway,
// or 502/503 -> `gateway:unreachable`.
// The checks run in the same order as the Python Phone's. Event channel: a WebSocket
// (POST {session}/websockets; the bearer token travels as the access_token query parameter,
// because a browser cannot set headers on a WebSocket). No STUN server is used unless
// setIceServers() says so; offers are not trickled (the SDP carries every candidate).

import { installCallControl } from './phone_calls.js';
import { installConferences } from './phone_conference.js';

export const VERSION = '0.1.0';

export const EVENTS = new Set([
  'session:ready', 'session:disconnected', 'session:expired', 'session:call-switched',
  'gateway:unreachable', 'address-updated', 'dialing', 'answering', 'call:incoming',
  'call:connecting', 'call:connected', 'call:disconnecting', 'call:disconnected',
  'call:canceled', 'call:rejected', 'call:muted', 'call:unmuted', 'call:held', 'call:resumed',
  'call:moved', 'call:transferring', 'call:transferred', 'call:ringback-provided',
  'call:modification-in-progress', 'call:media-modification', 'call:state-changed',
  'media:established', 'dtmf:tone-sending', 'dtmf:tone-sent', 'notification', 'warning',
  'error', 'connectivity:on', 'connectivity:off',
  'conference:connecting', 'conference:connected', 'conference:held', 'conference:resumed',
  'conference:ended', 'conference:canceled', 'conference:invitation-received',
  'conference:invitation-sending', 'conference:invitation-sent', 'conference:invitation-accepted',
  'conference:invitation-rejected', 'conference:participant-removed', 'conference:disconnecting',
  'conference:joining',
]);

// states after which a call is gone from this Phone
export const ENDED = new Set(['disconnected', 'rejected', 'canceled', 'moved', 'transferred']);
const DTMF_TONES = /^[0-9*#A-Da-d]+$/;
const MEDIA_TIMEOUT_MS = 10000;
const AUDIO_CONSTRAINTS = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };

// gateway (HTTP status, MessageId) -> ErrorCode, as in ivrbot/errors.py
const API_CODES = {
  '400 SVC0001': '1001', '400 SVC0002': '1002', '400 SVC0003': '1003', '400 SVC0004': '1004',
  '400 SVC0015': '1015', '400 SVC0016': '1016', '400 SVC0017': '1017', '400 SVC0018': '1018',
  '400 SVC8510': '1501', '400 SVC8511': '1511', '400 SVC8512': '1521', '400 SVC8514': '1531',
  '404 SVC8514': '1541', '401 POL0001': '1711', '403 POL0001': '1713', '403 POL0002': '1702',
  '403 POL0003': '1703', '403 POL1009': '1809', '403 POL1100': '1901', '403 POL1102': '1921',
  '409 SVC8501': '1401',
};

export function apiErrorCode(status, messageId) {
  const code = messageId && API_CODES[`${status} ${messageId}`];
  if (code) return code;
  if (status >= 500 && status <= 505 && !messageId) return String(status);
  return '1000';
}

const now = () => Date.now();

// phone-number utilities (spec: cleanPhoneNumber, formatNumber, getCallerInfo) -------------
const SPECIAL_NUMBERS = new Set(['911', '411', '611', '*69', '#89']);
const KEYPAD = {};
['abc', 'def', 'ghi', 'jkl', 'mno', 'pqrs', 'tuv', 'wxyz'].forEach((letters, i) => {
  for (const c of letters) KEYPAD[c] = String(i + 2);
});

export function cleanPhoneNumber(number) {
  if (typeof number !== 'string') throw new TypeError('a phone number must be a string');
  if (number.includes('@')) return number;
  number = number.replace(/\s+/g, '');
  if (SPECIAL_NUMBERS.has(number)) return number;
  let out = '';
  for (const ch of number.toLowerCase()) {
    if (ch >= '0' && ch <= '9') out += ch;
    else if (KEYPAD[ch]) out += KEYPAD[ch];
  }
  return out;
}

export function formatNumber(number) {
  const cleaned = cleanPhoneNumber(number);
  if (cleaned.includes('@')) return cleaned;
  if (!cleaned) throw new RangeError(`${JSON.stringify(number)} has no digits to format`);
  if (cleaned.length <= 10) return cleaned;
  const national = cleaned.slice(-10);
  return `+${cleaned.slice(0, -10)} (${national.slice(0, 3)}) ${national.slice(3, 6)}-${national.slice(6)}`;
}

export function getCallerInfo(uri) {
  if (uri === null || uri === undefined) return null;
  if (typeof uri !== 'string') throw new TypeError('a caller URI must be a string');
  uri = uri.trim();
  if (!uri) return null;
  const [head, ...params] = uri.split(';');
  const info = {};
  for (const param of params) {
    const [key, ...value] = param.split('=');
    if (key.trim()) info[key.trim()] = value.join('=').trim();
  }
  const parts = head.split(':');
  if (parts.length > 3) throw new RangeError(`${uri} is not a caller URI`);
  const [protocol, rest, port] = parts.length === 1 ? ['', parts[0], ''] : [parts[0], parts[1], parts[2] || ''];
  const at = rest.indexOf('@');
  const callerId = at < 0 ? rest : rest.slice(0, at);
  const domain = at < 0 ? '' : rest.slice(at + 1);
  return Object.assign(info, { protocol, port, callerId, domain });
}

// destination -> called-party URI (null: not callable), as ivrbot.numbers.called_party_uri
export function calledPartyUri(destination, domain) {
  if (destination.includes('@')) return `sip:${destination}`;
  const digits = cleanPhoneNumber(destination);
  if (!/^[0-9]+$/.test(digits)) return null;
  if (digits.length === 10 || digits.startsWith('1')) return `tel:+${digits}`;
  return `sip:${digits}@${domain}`;
}

// a caller mistake or a failed request: the error event is already published
export class Failed extends Error {}

function errorObject(method, code, message, resp) {
  return {
    JSObject: 'phone', JSMethod: method, ErrorCode: code, ErrorMessage: message,
    Cause: '', Resolution: '', APIError: resp ? resp.text : '', ResourceMethod: '',
    HttpStatusCode: resp ? resp.status : null, MessageId: resp ? resp.messageId || '' : '',
    AdditionalInformation: '', timeStamp: now(),
  };
}

export class Unreachable extends Error {}

function requestError(body) {
  const error = body && typeof body === 'object' && body.RequestError;
  return error ? error.ServiceException || error.PolicyException || null : null;
}

function waitFor(target, event, test, timeoutMs) {
  return new Promise((resolve) => {
    if (test()) { resolve(true); return; }
    const timer = setTimeout(() => { target.removeEventListener(event, check); resolve(false); }, timeoutMs);
    function check() {
      if (!test()) return;
      clearTimeout(timer);
      target.removeEventListener(event, check);
      resolve(true);
    }
    target.addEventListener(event, check);
  });
}

/** One call of a Phone: state, peer connection, local and remote audio. */
export class Call {
  constructor(phone, index, direction, peer, mediaType = 'audio') {
    this.phone = phone;
    this.index = index;
    this.direction = direction; // 'outgoing' | 'incoming'
    this.peer = peer;
    this.mediaType = mediaType;
    this.breed = 'call';
    this.id = null; // the gateway's call id
    this.state = 'created';
    this.remoteSdp = null;
    this.autoHeld = false;
    this.muted = false;
    this.localStream = null;
    this.ownsLocalStream = false;
    this.remoteStream = new MediaStream();
    this.remoteMedia = null; // the element playing the far end
    this._mods = new Map(); // modId -> {promise, resolve}: its mod-terminated event
    // settles once the gateway answered the request that placed an outgoing call
    this.placed = new Promise((resolve) => { this._placedResolve = resolve; });
    this.pc = new RTCPeerConnection({
      iceServers: phone.iceTransport === 'none' ? [] : phone.iceServers,
      iceTransportPolicy: phone.iceTransport === 'all' ? 'all' : 'relay',
    });
    this.pc.addEventListener('track', (ev) => {
      if (!this.remoteStream.getTracks().includes(ev.track)) this.remoteStream.addTrack(ev.track);
      if (this.remoteMedia) this.remoteMedia.srcObject = this.remoteStream;
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed') this.phone._mediaFailed(this);
    });
  }

  /** The one place a call changes state: publishes call:state-changed. */
  setState(state) {
    const old = this.state;
    this.state = state;
    if (old !== state) this.phone._publish('call:state-changed', this.eventData({ oldState: old, newState: state }));
  }

  eventData(extra = {}) {
    const outgoing = this.direction === 'outgoing';
    const me = this.phone.userId || '';
    return {
      index: this.index, timestamp: now(), callType: this.breed, mediaType: this.mediaType,
      to: outgoing ? this.peer : me, from: outgoing ? me : this.peer,
      generator: outgoing ? 'initiator' : 'receiver', ...extra,
    };
  }

  get sender() {
    return this.pc.getSenders().find((s) => s.track && s.track.kind === 'audio')
      || this.pc.getSenders()[0] || null;
  }

  async attachMedia(localMedia, remoteMedia) {
    if (localMedia instanceof MediaStream) {
      this.localStream = localMedia;
    } else {
      this.localStream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS });
      this.ownsLocalStream = true;
      if (localMedia instanceof HTMLMediaElement) {
        localMedia.muted = true;
        localMedia.srcObject = this.localStream;
      }
    }
    this.remoteMedia = remoteMedia instanceof HTMLMediaElement ? remoteMedia : new Audio();
    this.remoteMedia.autoplay = true;
    this.remoteMedia.srcObject = this.remoteStream;
    for (const track of this.localStream.getAudioTracks()) this.pc.addTrack(track, this.localStream);
  }

  /** The mod-terminated event of `modId` (it may come before the reply that named it);
   *  null when the call ended first. */
  modResult(modId) {
    let entry = this._mods.get(modId);
    if (!entry) {
      let resolve;
      const promise = new Promise((r) => { resolve = r; });
      entry = { promise, resolve };
      this._mods.set(modId, entry);
    }
    return entry;
  }

  /** The local description once ICE gathering is complete (offers are not trickled). */
  async localSdp() {
    await waitFor(this.pc, 'icegatheringstatechange', () => this.pc.iceGatheringState === 'complete', 5000);
    return this.pc.localDescription.sdp;
  }

  closeMedia() {
    for (const entry of this._mods.values()) entry.resolve(null);
    if (this.ownsLocalStream && this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
    if (this.remoteMedia && this.remoteMedia.srcObject === this.remoteStream) this.remoteMedia.srcObject = null;
    if (this.pc.signalingState !== 'closed') this.pc.close();
  }

  toInfo() {
    return { index: this.index, state: this.state, breed: this.breed, type: this.mediaType, peer: this.peer };
  }
}

/** One logged-in endpoint: the spec's methods in camelCase, the spec's events. */
export class Phone {
  constructor({ gatewayUrl = location.origin, rtcUri = '/RTC/v1', domain = 'ivrbot.local', name = 'phone' } = {}) {
    this.baseUrl = gatewayUrl.replace(/\/+$/, '');
    this.rtcUri = rtcUri;
    this.domain = domain;
    this.name = name;
    this.token = null;
    this.userId = null;
    this.sessionPath = null;
    this.reachable = true;
    this.calls = [];
    this.foreground = null;
    this.iceServers = [];
    this.iceTransport = 'all';
    this._handlers = new Map();
    this._nextIndex = 0;
    this._ws = null;
    this._channel = Promise.resolve(); // channel events are handled one after another
    this._refreshTimer = null;
    this._dtmfQueue = Promise.resolve();
  }

  // events ----------------------------------------------------------------------------------
  on(event, handler) {
    return this._run('on', '4900', () => {
      if (typeof event !== 'string' || typeof handler !== 'function') this._fail('on', '4901', 'on() takes an event name and a function');
      if (!EVENTS.has(event)) this._fail('on', '4902', `unknown event name ${JSON.stringify(event)}`);
      if (!this._handlers.has(event)) this._handlers.set(event, []);
      this._handlers.get(event).push(handler);
    });
  }

  _publish(event, payload) {
    for (const handler of [...(this._handlers.get(event) || [])]) {
      try {
        const result = handler(payload);
        if (result && typeof result.catch === 'function') result.catch((e) => console.error(`${event} handler failed`, e));
      } catch (e) {
        console.error(`${this.name}: handler for ${event} failed`, e);
      }
    }
  }

  /** Fail `method` with `code`: the `error` event (unless `publish` is false: another event,
   *  session:expired or gateway:unreachable, tells the application instead), then Failed. */
  _fail(method, code, message, resp, publish = true) {
    if (publish) this._publish('error', errorObject(method, code, message, resp));
    throw new Failed(`${method}: ${code} ${message}`);
  }

  /** A gateway error response, as spec/phone-api.md maps it (the Python Phone's _api_fail):
   *  the session gone (404 SVC8514, except on login's requests) is `session:expired` and
   *  502/503 `gateway:unreachable`, instead of `error`; a resource that is gone (404 SVC0404
   *  or a bare 404: a call, a conference) fails the method with `base` (xx00); anything else by status and
   *  MessageId (a bare 5xx: its status; an unknown pair: 1000). */
  _apiFail(method, base, resp) {
    if (resp.status === 404 && resp.messageId === 'SVC8514' && method !== 'login') {
      this._publish('session:expired', { sessionId: this.sessionId, timestamp: now() });
      this._fail(method, base, 'the session has expired', resp, false);
    }
    if (resp.status === 502 || resp.status === 503) {
      this._gatewayUnreachable();
      this._fail(method, String(resp.status), 'gateway unreachable', resp, false);
    }
    if (resp.status === 404 && (!resp.messageId || resp.messageId === 'SVC0404')) this._fail(method, base, resp.text || 'no such resource', resp);
    this._fail(method, apiErrorCode(resp.status, resp.messageId), resp.text, resp);
  }

  /** No answer from the gateway (or 502/503): `gateway:unreachable`, not `error`. While
   *  logged in the Phone also goes offline (connectivity:off) until the channel is back. */
  _gatewayUnreachable() {
    if (this.loggedIn) this._setReachable(false);
    this._publish('gateway:unreachable', { sessionId: this.sessionId, timestamp: now() });
  }

  /** Run a method body: caller mistakes resolve to undefined (error already published);
   *  anything unexpected publishes `unexpected` (the method's xx00 code). */
  _run(method, unexpected, body) {
    const onError = (e) => {
      if (!(e instanceof Failed)) {
        console.error(`${this.name}: ${method} failed`, e);
        this._publish('error', errorObject(method, unexpected, String(e && e.message || e)));
      }
      return undefined;
    };
    try {
      const result = body();
      return result && typeof result.then === 'function' ? result.catch(onError) : result;
    } catch (e) {
      return onError(e);
    }
  }

  // requests to the gateway -----------------------------------------------------------------
  async _send(httpMethod, path, body, headers = {}) {
    const all = { 'Content-Type': 'application/json', ...headers };
    if (this.token) all.Authorization = `Bearer ${this.token}`;
    let resp;
    try {
      resp = await fetch(this.baseUrl + path, {
        method: httpMethod, headers: all, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Unreachable(`${httpMethod} ${path}: ${e.message || e}`);
    }
    if (resp.status === 502 || resp.status === 503) throw new Unreachable(`${httpMethod} ${path}: HTTP ${resp.status}`);
    const raw = await resp.text();
    let parsed = raw;
    try { parsed = raw ? JSON.parse(raw) : null; } catch { /* not JSON: keep the text */ }
    const inner = requestError(parsed);
    return {
      status: resp.status, ok: resp.ok, headers: resp.headers, body: parsed,
      messageId: inner ? String(inner.MessageId) : null,
      text: inner ? String(inner.Text) : (typeof parsed === 'string' ? parsed : ''),
    };
  }

  async _request(method, failCode, httpMethod, path, body, headers) {
    try {
      return await this._send(httpMethod, path, body, headers);
    } catch (e) {
      if (!(e instanceof Unreachable)) throw e;
      this._gatewayUnreachable(); // instead of error
      this._fail(method, failCode, `gateway unreachable: ${e.message}`, undefined, false);
    }
  }

  get online() {
    return navigator.onLine !== false && this.reachable;
  }

  _setReachable(reachable) {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    this._publish(reachable ? 'connectivity:on' : 'connectivity:off');
  }

  // session -----------------------------------------------------------------------------------
  get sessionId() {
    return this.sessionPath ? this.sessionPath.split('/').pop() : null;
  }

  get loggedIn() {
    return this.sessionPath !== null;
  }

  login(options) {
    return this._run('login', '2000', async () => {
      if (!this.online) this._fail('login', '0002', 'network offline');
      const { token, e911Id, userId } = options || {};
      if (!options || (token === undefined && e911Id === undefined && userId === undefined)) {
        this._fail('login', '2001', 'login needs options: {token, userId?, e911Id?}');
      }
      if (!token) this._fail('login', '2002', 'login needs an access token');
      if (this.loggedIn) this._fail('login', '2003', 'already logged in');
      this.token = token;
      if (userId) {
        const resp = await this._request('login', '2000', 'PUT', `${this.rtcUri}/userIds/${encodeURIComponent(userId)}`);
        if (!resp.ok) this._apiFail('login', '2000', resp);
      }
      const body = { session: { mediaType: 'dtls-srtp', ice: 'true', services: ['ip_voice_call', 'ip_video_call'] } };
      const resp = await this._request('login', '2000', 'POST', `${this.rtcUri}/sessions`, body, e911Id ? { 'x-e911Id': e911Id } : {});
      if (resp.status !== 201) this._apiFail('login', '2000', resp);
      this.sessionPath = resp.headers.get('Location');
      this.userId = userId || null;
      try {
        await this._openChannel();
      } catch (e) {
        this.sessionPath = null;
        this._fail('login', '2000', e.message);
      }
      this.reachable = true;
      const expires = parseInt(resp.headers.get('x-expires') || '', 10);
      if (expires > 0) this._scheduleRefresh(expires);
      this._publish('session:ready', { sessionId: this.sessionId, userid: this.userId || '', timeStamp: now() });
    });
  }

  logout() {
    return this._run('logout', '2100', async () => {
      if (!this.online) this._fail('logout', '0002', 'network offline');
      if (!this.loggedIn) this._fail('logout', '2101', 'not logged in');
      for (const call of [...this.calls]) await this._endCall(call, call.state !== 'created' ? 'terminate' : null);
      const path = this.sessionPath;
      this.sessionPath = null; // the channel stops quietly
      try { await this._send('DELETE', path); } catch { /* gone anyway */ }
      this._closeSession();
      this._publish('session:disconnected');
    });
  }

  associateE911Id(options) {
    return this._run('associateE911Id', '2050', async () => {
      if (!options) this._fail('associateE911Id', '2051', 'associateE911Id needs {e911Id}');
      const { e911Id } = options;
      if (typeof e911Id !== 'string' || !e911Id) this._fail('associateE911Id', '2052', 'e911Id must be a non-empty string');
      if (!this.loggedIn) this._fail('associateE911Id', '2053', 'not logged in');
      const resp = await this._request('associateE911Id', '2050', 'PUT', this.sessionPath, { e911Association: { e911Id } });
      if (!resp.ok) this._apiFail('associateE911Id', '2050', resp);
      this._publish('address-updated', { sessionId: this.sessionId, timestamp: now() });
    });
  }

  setIceServers(servers) {
    return this._run('setIceServers', '4800', () => {
      const parsed = [];
      let ok = Array.isArray(servers);
      for (let server of ok ? servers : []) {
        if (typeof server === 'string') server = { urls: server };
        let urls = server && typeof server === 'object' ? server.urls : undefined;
        if (typeof urls === 'string') urls = [urls];
        if (!Array.isArray(urls) || !urls.length || !urls.every((u) => typeof u === 'string' && /^(stun|turns?):/.test(u))) {
          ok = false;
          break;
        }
        parsed.push({ ...server, urls });
      }
      if (!ok) this._fail('setIceServers', '4811', "ice servers must be a list of {urls: 'stun:...'|'turn:...'} or URL strings");
      this.iceServers = parsed;
    });
  }

  setIceTransport(policy) {
    return this._run('setIceTransport', '4820', () => {
      if (!['all', 'relay', 'none'].includes(policy)) this._fail('setIceTransport', '4821', "ice transport must be 'all', 'relay' or 'none'");
      this.iceTransport = policy;
    });
  }

  _scheduleRefresh(expiresS) {
    clearTimeout(this._refreshTimer);
    const delay = this.online ? Math.max(expiresS - 60, expiresS / 2) : 2;
    this._refreshTimer = setTimeout(async () => {
      if (!this.sessionPath) return;
      try {
        const resp = await this._send('PUT', this.sessionPath, {});
        if (resp.status === 404) { this._sessionLost(); return; }
        this._setReachable(true);
        const header = parseInt(resp.headers.get('x-expires') || '', 10);
        if (header > 0) expiresS = header;
      } catch (e) {
        if (!(e instanceof Unreachable)) throw e;
        this._unreachable();
      }
      if (this.sessionPath) this._scheduleRefresh(expiresS);
    }, delay * 1000);
  }

  _closeSession() {
    this.sessionPath = null;
    clearTimeout(this._refreshTimer);
    if (this._ws) { const ws = this._ws; this._ws = null; ws.close(); }
  }

  _sessionLost() {
    const sessionId = this.sessionId;
    for (const call of [...this.calls]) {
      this._forget(call, 'disconnected');
      this._publish('call:disconnected', call.eventData({ message: 'Session expired' }));
    }
    this._closeSession();
    // the gateway answered (404): reachable again, so a new login is not refused as offline
    // (quietly: connectivity events are about a logged-in Phone)
    this.reachable = true;
    this._publish('session:expired', { sessionId, timestamp: now() });
  }

  _unreachable() {
    if (this.reachable) {
      this._setReachable(false);
      this._publish('gateway:unreachable', { sessionId: this.sessionId, timestamp: now() });
    }
  }

  // the event channel -------------------------------------------------------------------------
  async _openChannel() {
    const resp = await this._send('POST', `${this.sessionPath}/websockets`);
    if (resp.status === 404) { const e = new Error('session gone'); e.gone = true; throw e; }
    if (resp.status !== 201) throw new Unreachable(`event channel refused: HTTP ${resp.status} ${resp.text}`);
    const url = new URL(resp.headers.get('Location'), this.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('access_token', this.token);
    const ws = new WebSocket(url.href);
    const opened = await new Promise((resolve) => {
      ws.addEventListener('open', () => resolve(true), { once: true });
      ws.addEventListener('error', () => resolve(false), { once: true });
    });
    if (!opened) throw new Unreachable('event channel refused: the WebSocket did not open');
    ws.addEventListener('message', (msg) => {
      let objects = [];
      try {
        objects = JSON.parse(msg.data).events.eventList.map((item) => item.eventObject);
      } catch (e) {
        console.error(`${this.name}: bad event channel message`, msg.data);
      }
      for (const obj of objects) {
        this._channel = this._channel
          .then(() => this._onChannelEvent(obj))
          .catch((e) => console.error(`${this.name}: handling ${obj.state} failed`, e));
      }
    });
    ws.addEventListener('close', () => {
      if (this._ws === ws) { this._ws = null; this._reconnect(); }
    });
    this._ws = ws;
  }

  /** The channel dropped: retry every second until it is back or the session is gone. */
  async _reconnect() {
    while (this.sessionPath) {
      this._unreachable();
      await new Promise((r) => setTimeout(r, 1000));
      if (!this.sessionPath) return;
      try {
        await this._openChannel();
      } catch (e) {
        if (e.gone) { this._sessionLost(); return; }
        continue;
      }
      this._setReachable(true);
      return;
    }
  }

  async _onChannelEvent(obj) {
    if (obj.type === 'conferences') { await this._onConferenceEvent(obj); return; }
    if (obj.type !== 'calls') return;
    const { state } = obj;
    const url = String(obj.resourceURL || '');
    let call = this._callByUrl(url);
    if (!call && state !== 'invitation-received') {
      // the gateway may tell about a call (its early answer, for ringback) before the reply
      // to POST .../calls has given us the call's id: wait for that reply, then look again
      const placing = this.calls.find((c) => c.direction === 'outgoing' && c.id === null);
      if (placing) {
        await placing.placed;
        call = this._callByUrl(url);
      }
    }
    if (state === 'invitation-received') {
      if (this._pendingIncoming() || this.calls.length >= 2) {
        this._publish('notification', { message: 'a further incoming call was refused', timestamp: now() });
        await this._send('DELETE', url, undefined, { 'x-delete-reason': 'reject' }).catch(() => {});
        return;
      }
      call = this._newCall('incoming', String(obj.from || ''));
      call.id = url.split('/').pop();
      call.remoteSdp = obj.sdp;
      this._publish('call:incoming', { from: call.peer, mediaType: call.mediaType, codec: '', timestamp: now() });
    } else if (!call) {
      return;
    } else if (state === 'session-open' && obj.provisionalSDP) {
      // early media: the answer now (ringback is heard), connected when the callee answers
      await this._setAnswer(call, obj.sdp);
      this._publish('call:ringback-provided', call.eventData());
    } else if (state === 'session-open' || (state === 'session-modified' && !obj.reason
        && call.state === 'connecting' && call.direction === 'outgoing')) {
      await this._setAnswer(call, obj.sdp);
      if (call.direction === 'incoming' || call.pc.remoteDescription) this._whenMediaUp(call);
    } else if (state === 'session-terminated') {
      // without a reason it is about this Phone's own DELETE, which ended the call already
      if ('reason' in obj) this._remoteEnded(call, String(obj.reason || ''));
    } else if (state === 'mod-terminated') {
      call.modResult(String(obj.modId || '')).resolve(obj);
    } else {
      await this._onCallChanged(call, state, obj);  // transfer, move, media modification
    }
  }

  async _setAnswer(call, sdp) {
    if (typeof sdp === 'string' && call.direction === 'outgoing' && !call.pc.remoteDescription) {
      await call.pc.setRemoteDescription({ type: 'answer', sdp });
    }
  }

  async _whenMediaUp(call, connected = 'call:connected') {
    const up = await waitFor(call.pc, 'connectionstatechange', () => call.pc.connectionState === 'connected', MEDIA_TIMEOUT_MS);
    if (!up) { this._mediaFailed(call); return; }
    if (call.state === 'connecting') {
      call.setState('connected');
      this._publish('media:established', call.eventData());
      this._publish(connected, call.eventData());
    }
  }

  async _mediaFailed(call) {
    if (!ENDED.has(call.state)) {
      console.warn(`${this.name}: media of call ${call.index} failed`);
      await this._endCall(call, 'terminate');
    }
  }

  _remoteEnded(call, reason) {
    call.endReason = reason;
    if (call.state === 'created' && call.direction === 'incoming') {
      this._forget(call, 'canceled');
      this._publish('call:canceled', call.eventData({ message: reason }));
    } else if (call.state === 'connecting' && reason === 'User busy') {
      this._forget(call, 'rejected');
      this._publish('call:rejected', call.eventData({ message: reason }));
    } else if (!ENDED.has(call.state)) {
      this._forget(call, 'disconnected');
      this._publish('call:disconnected', call.eventData({ message: reason }));
    }
  }

  // calls -------------------------------------------------------------------------------------
  _newCall(direction, peer, mediaType = 'audio') {
    this._nextIndex += 1;
    const call = new Call(this, this._nextIndex, direction, peer, mediaType);
    this.calls.push(call);
    return call;
  }

  get currentCall() {
    const call = this.foreground;
    return call && !ENDED.has(call.state) ? call : null;
  }

  get backgroundCall() {
    return this.calls.find((c) => c !== this.foreground && !ENDED.has(c.state) && c.state !== 'created') || null;
  }

  _callByUrl(url) {
    const cid = url.replace(/\/+$/, '').split('/').pop();
    return this.calls.find((c) => c.id === cid) || null;
  }

  _pendingIncoming() {
    return this.calls.find((c) => c.direction === 'incoming' && c.state === 'created') || null;
  }

  _checkMedia(method, codes, local, remote) {
    if (local != null && !(local instanceof MediaStream) && !(local instanceof HTMLMediaElement)) {
      this._fail(method, codes[0], 'localMedia must be a MediaStream or a media element');
    }
    if (remote != null && !(remote instanceof HTMLMediaElement)) {
      this._fail(method, codes[1], 'remoteMedia must be an audio or video element');
    }
  }

  async _attach(method, call, localMedia, remoteMedia) {
    try {
      await call.attachMedia(localMedia, remoteMedia);
    } catch (e) {
      if (call.direction === 'incoming' && call.id && this.sessionPath) {
        // without a microphone the call cannot be answered here: turn it down
        this._send('DELETE', `${this.sessionPath}/calls/${call.id}`, undefined, { 'x-delete-reason': 'reject' }).catch(() => {});
      }
      this._forget(call, 'disconnected');
      this._fail(method, '0020', `local media refused: ${e.message || e}`);
    }
  }

  dial(options) {
    return this._run('dial', '2200', async () => {
      if (!this.online) this._fail('dial', '0002', 'network offline');
      const { destination, mediaType, localMedia, remoteMedia } = this._checkDial('dial', '22', options);
      const current = this.currentCall;
      if (current && ['created', 'connecting'].includes(current.state)) this._fail('dial', '2251', 'a call is still connecting');
      if (current) this._fail('dial', '2252', 'a call is already active');
      return this._place('dial', ['2211', '2200'], destination, mediaType, localMedia, remoteMedia);
    });
  }

  /** dial's and addCall's checks of their options, in order (`prefix`: '22' or '39'):
   *  no options x01, destination x11 / x12 / x13, mediaType x21, media x31 / x32, logged
   *  in x41. The options, with mediaType 'audio' by default. */
  _checkDial(method, prefix, options) {
    if (!options || options.destination === undefined || options.destination === null) this._fail(method, `${prefix}01`, `${method} needs {destination, mediaType}`);
    const { destination, mediaType = 'audio', localMedia, remoteMedia } = options;
    if (typeof destination !== 'string' || !destination.trim()) this._fail(method, `${prefix}11`, 'destination must be a non-empty string');
    if (destination.includes('sip:') || destination.includes('tel:')) this._fail(method, `${prefix}12`, 'destination must not contain sip: or tel:');
    if (destination.split('@').length > 2) this._fail(method, `${prefix}13`, 'destination has more than one @');
    if (!['audio', 'video'].includes(mediaType)) this._fail(method, `${prefix}21`, "mediaType must be 'audio' or 'video'");
    this._checkMedia(method, [`${prefix}31`, `${prefix}32`], localMedia, remoteMedia);
    if (!this.loggedIn) this._fail(method, `${prefix}41`, 'not logged in');
    return { destination, mediaType, localMedia, remoteMedia };
  }

  /** Place a call (dial, addCall): `codes` = [not callable, unexpected]. */
  async _place(method, codes, destination, mediaType, localMedia, remoteMedia) {
    const uri = calledPartyUri(destination.trim(), this.domain);
    if (uri === null) this._fail(method, codes[0], `${JSON.stringify(destination)} is not a callable number`);
    const call = this._newCall('outgoing', uri, mediaType);
    this.foreground = call;
    this._publish('dialing', { to: uri, mediaType, timestamp: now() });
    await this._attach(method, call, localMedia, remoteMedia);
    await call.pc.setLocalDescription(await call.pc.createOffer());
    const body = { call: { calledParty: uri, sdp: await call.localSdp() } };
    let resp;
    try {
      resp = await this._request(method, codes[1], 'POST', `${this.sessionPath}/calls`, body);
      if (resp.status === 201) call.id = resp.headers.get('Location').split('/').pop();
    } catch (e) {
      this._forget(call, 'disconnected');
      throw e;
    } finally {
      call._placedResolve(); // channel events waiting for the call's id go on
    }
    if (resp.status !== 201) {
      this._forget(call, 'disconnected');
      this._apiFail(method, codes[1], resp);
    }
    call.setState('connecting');
    this._publish('call:connecting', call.eventData());
    return call;
  }

  answer(options) {
    return this._run('answer', '2300', async () => {
      if (!this.online) this._fail('answer', '0002', 'network offline');
      if (!options) this._fail('answer', '2301', 'answer needs {localMedia, remoteMedia}');
      const { localMedia, remoteMedia, action } = options;
      this._checkMedia('answer', ['2311', '2312'], localMedia, remoteMedia);
      if (!this.loggedIn) this._fail('answer', '2321', 'not logged in');
      const call = this._pendingIncoming();
      if (!call) this._fail('answer', '2331', 'no incoming call to answer');
      const others = this.calls.filter((c) => c !== call && !ENDED.has(c.state));
      if (others.length && !['hold', 'end'].includes(action)) this._fail('answer', '2341', "a call is in progress: action must be 'hold' or 'end'");
      if (others.length && action === 'end') {
        for (const other of others) await this._endCall(other, 'terminate');
      } else if (others.length && this.foreground && this.foreground.state === 'connected') {
        await this._holdCall(this.foreground, 'answer', '2300', true);
      }
      this._publish('answering', { from: call.peer, mediaType: call.mediaType, codec: '', timestamp: now() });
      await call.pc.setRemoteDescription({ type: 'offer', sdp: call.remoteSdp });
      await this._attach('answer', call, localMedia, remoteMedia);
      await call.pc.setLocalDescription(await call.pc.createAnswer());
      const body = { callsMediaModifications: { sdp: await call.localSdp() } };
      const resp = await this._request('answer', '2300', 'PUT', `${this.sessionPath}/calls/${call.id}`, body, { 'x-calls-action': 'call-answer' });
      if (!resp.ok) {
        this._forget(call, 'disconnected');
        this._apiFail('answer', '2300', resp);
      }
      this.foreground = call;
      call.setState('connecting');
      this._publish('call:connecting', call.eventData());
      return call;
    });
  }

  hangup() {
    return this._run('hangup', '2400', async () => {
      if (!this.online) this._fail('hangup', '0002', 'network offline');
      if (!this.loggedIn) this._fail('hangup', '2401', 'not logged in');
      const call = this.currentCall;
      if (!call || ['created', 'disconnecting'].includes(call.state)) this._fail('hangup', '2402', 'no active call');
      await this._endCall(call, 'terminate');
    });
  }

  cancel() {
    return this._run('cancel', '2900', async () => {
      if (!this.online) this._fail('cancel', '0002', 'network offline');
      if (!this.loggedIn) this._fail('cancel', '2901', 'not logged in');
      const call = this.currentCall;
      if (!call || call.direction !== 'outgoing' || call.state !== 'connecting') this._fail('cancel', '2902', 'no outgoing call waiting for an answer');
      const resp = await this._request('cancel', '2900', 'DELETE', `${this.sessionPath}/calls/${call.id}`, undefined, { 'x-delete-reason': 'cancel' });
      if (!resp.ok) this._apiFail('cancel', '2900', resp);
      this._forget(call, 'canceled');
      this._publish('call:canceled', call.eventData({ message: '' }));
    });
  }

  reject() {
    return this._run('reject', '3000', async () => {
      if (!this.online) this._fail('reject', '0002', 'network offline');
      if (!this.loggedIn) this._fail('reject', '3001', 'not logged in');
      const call = this._pendingIncoming();
      if (!call) this._fail('reject', '3002', 'no incoming call to reject');
      this._forget(call, 'rejected'); // no longer pending: the next invitation may ring at once
      const resp = await this._request('reject', '3000', 'DELETE', `${this.sessionPath}/calls/${call.id}`, undefined, { 'x-delete-reason': 'reject' });
      if (!resp.ok) this._apiFail('reject', '3000', resp);
      this._publish('call:rejected', call.eventData({ message: '' }));
    });
  }

  async _endCall(call, reason) {
    if (ENDED.has(call.state)) return;
    call.setState('disconnecting');
    this._publish('call:disconnecting', call.eventData());
    if (reason && call.id && this.sessionPath) {
      try {
        await this._send('DELETE', `${this.sessionPath}/calls/${call.id}`, undefined, { 'x-delete-reason': reason });
      } catch (e) {
        if (!(e instanceof Unreachable)) throw e;
      }
    }
    this._forget(call, 'disconnected');
    this._publish('call:disconnected', call.eventData({ message: 'Call terminated' }));
  }

  /** The call is over here: close its media; the remaining call comes to the front. */
  _forget(call, state) {
    call.setState(state);
    call.closeMedia();
    this.calls = this.calls.filter((c) => c !== call);
    if (call === this.foreground) {
      this.foreground = this.backgroundCall;
      const remaining = this.foreground;
      if (remaining && remaining.autoHeld && remaining.state === 'held') {
        this._resumeCall(remaining, 'resume', '2600').catch(() => console.warn(`could not resume call ${remaining.index}`));
      }
    }
  }

  // in-call control ---------------------------------------------------------------------------
  _common(method, codes) {
    if (!this.loggedIn) this._fail(method, codes[0], 'not logged in');
    const call = this.currentCall;
    if (!call) this._fail(method, codes[1], 'no call');
    return call;
  }

  async _callAction(method, code, call, action, headers = {}, body = {}) {
    const resp = await this._request(method, code, 'PUT', `${this.sessionPath}/calls/${call.id}`, body, { 'x-calls-action': action, ...headers });
    if (!resp.ok) this._apiFail(method, code, resp);
    return resp;
  }

  /** Hold or resume: a new offer (`direction` sendonly / sendrecv) with the request; the
   *  gateway's answer comes in mod-terminated with the reply's x-modId. */
  async _mediaChange(method, code, call, action, direction) {
    const resp = await this._offerChange(method, code, call, direction, `${this.sessionPath}/calls/${call.id}`,
      { 'x-calls-action': action }, 'callsMediaModifications');
    await this._changeSettled(method, code, call, resp.headers.get('x-modId'), MEDIA_TIMEOUT_MS);
  }

  /** A new offer of the call's media (`direction`: sendonly to hold, sendrecv) sent with a
   *  request that changes it (in body[bodyKey], with `extra`); the answer comes later. */
  async _offerChange(method, code, call, direction, path, headers, bodyKey, extra = {}) {
    const audio = call.pc.getTransceivers().filter((t) => t.receiver.track && t.receiver.track.kind === 'audio');
    const before = audio.map((t) => t.direction);
    try {
      audio.forEach((t) => { t.direction = direction; });
      await call.pc.setLocalDescription(await call.pc.createOffer());
      const body = { [bodyKey]: { sdp: await call.localSdp(), ...extra } };
      const resp = await this._request(method, code, 'PUT', path, body, headers);
      if (!resp.ok) this._apiFail(method, code, resp);
      return resp;
    } catch (e) {
      audio.forEach((t, i) => { t.direction = before[i]; });
      throw e;
    }
  }

  /** Wait for the mod-terminated event of `modId` (null: no timeout) and apply its answer. */
  async _changeSettled(method, code, call, modId, timeoutMs) {
    if (!modId) return {}; // a gateway that gives no modId answers nothing
    const waits = [call.modResult(modId).promise];
    if (timeoutMs) waits.push(new Promise((r) => { setTimeout(() => r(undefined), timeoutMs); }));
    const obj = await Promise.race(waits);
    if (obj === undefined) this._fail(method, code, 'the gateway did not settle the media change');
    if (obj === null) this._fail(method, code, 'the call ended before its media change was settled');
    if (typeof obj.sdp === 'string' && call.pc.signalingState === 'have-local-offer') {
      await call.pc.setRemoteDescription({ type: 'answer', sdp: obj.sdp });
    }
    return obj;
  }

  async _holdCall(call, method, code, auto) {
    await this._mediaChange(method, code, call, 'initiate-call-hold', 'sendonly');
    call.autoHeld = auto;
    call.setState('held');
    this._publish('call:held', call.eventData());
  }

  async _resumeCall(call, method, code) {
    await this._mediaChange(method, code, call, 'initiate-call-resume', 'sendrecv');
    call.autoHeld = false;
    call.setState('connected');
    this._publish('call:resumed', call.eventData());
  }

  hold() {
    return this._run('hold', '2500', async () => {
      const call = this._common('hold', ['2501', '2502']);
      if (call.state !== 'connected') this._fail('hold', '2503', `only a connected call can be held (it is ${call.state})`);
      await this._holdCall(call, 'hold', '2500', false);
    });
  }

  resume() {
    return this._run('resume', '2600', async () => {
      const call = this._common('resume', ['2601', '2602']);
      if (call.state !== 'held') this._fail('resume', '2603', `only a held call can be resumed (it is ${call.state})`);
      await this._resumeCall(call, 'resume', '2600');
    });
  }

  _setMuted(method, codes, muted) {
    const call = this._common(method, codes);
    if (!call.localStream) this._fail(method, codes[2], 'the call has no local audio');
    if (call.muted === muted) {
      this._publish('warning', { message: `the call is already ${method}d` });
      return;
    }
    call.muted = muted;
    for (const track of call.localStream.getAudioTracks()) track.enabled = !muted;
    this._publish(muted ? 'call:muted' : 'call:unmuted', call.eventData());
  }

  mute() {
    return this._run('mute', '2700', () => this._setMuted('mute', ['2701', '2702', '2700'], true));
  }

  unmute() {
    return this._run('unmute', '2800', () => this._setMuted('unmute', ['2801', '2802', '2800'], false));
  }

  /** Keypad tones on the current call, as RFC 4733 events (RTCRtpSender.dtmf). */
  sendDTMFTone(options) {
    return this._run('sendDTMFTone', '4700', async () => {
      if (!this.online) this._fail('sendDTMFTone', '0002', 'network offline');
      if (!options) this._fail('sendDTMFTone', '4711', 'sendDTMFTone needs {input, gap?}');
      const { input, gap = 70 } = options;
      if (typeof input !== 'string' || !DTMF_TONES.test(input) || !(gap >= 50)) this._fail('sendDTMFTone', '4712', 'input must be 0-9 * # A-D and gap >= 50 ms');
      if (!this.loggedIn) this._fail('sendDTMFTone', '4721', 'not logged in');
      const call = this.currentCall;
      if (!call) this._fail('sendDTMFTone', '4731', 'no call');
      if (call.state !== 'connected') this._fail('sendDTMFTone', '4741', 'the call is not connected');
      const sender = call.sender;
      const dtmf = sender && sender.dtmf;
      if (!dtmf || !dtmf.canInsertDTMF) this._fail('sendDTMFTone', '4700', 'the far end did not negotiate telephone-event');
      // one key press after another, also across calls of this method
      const run = this._dtmfQueue.then(async () => {
        for (const tone of input.toUpperCase()) {
          this._publish('dtmf:tone-sending', call.eventData({ tone }));
          const done = new Promise((resolve) => {
            const onChange = (ev) => { if (ev.tone === '') { dtmf.removeEventListener('tonechange', onChange); resolve(); } };
            dtmf.addEventListener('tonechange', onChange);
            setTimeout(resolve, 2000 + gap);
          });
          dtmf.insertDTMF(tone, 100, gap);
          await done;
          this._publish('dtmf:tone-sent', call.eventData({ tone }));
        }
      });
      this._dtmfQueue = run.catch(() => {});
      await run;
    });
  }

  /** The brief's plural spelling of sendDTMFTone. */
  sendDTMFTones(options) {
    return this.sendDTMFTone(options);
  }

  // information -------------------------------------------------------------------------------
  getCalls() {
    return this.calls.map((c) => c.toInfo());
  }

  isCallInProgress() {
    return this.currentCall !== null;
  }

  getMediaType() {
    const call = this.currentCall;
    return call ? call.mediaType : null;
  }

  getVersion() {
    return VERSION;
  }

  cleanPhoneNumber(number) {
    return this._run('cleanPhoneNumber', '3800', () => {
      try { return cleanPhoneNumber(number); } catch (e) { return this._fail('cleanPhoneNumber', '3810', e.message); }
    });
  }

  formatNumber(number) {
    return this._run('formatNumber', '3800', () => {
      try { return formatNumber(number); } catch (e) { return this._fail('formatNumber', '3820', e.message); }
    });
  }

  getCallerInfo(uri) {
    return this._run('getCallerInfo', '3800', () => {
      try { return getCallerInfo(uri); } catch (e) { return this._fail('getCallerInfo', '3830', e.message); }
    });
  }
}

/** An access token from the gateway's app server (POST /tokens), as `ivrbot call` gets one;
 * `apiKey` (one of the gateway's IVRBOT_API_KEYS) is sent as X-API-Key: a gateway outside
 * development mode wants one. A refusal throws an Error whose `status` is the HTTP status. */
export async function fetchToken(gatewayUrl = location.origin, appScope = 'ACCOUNT_ID', { apiKey = '' } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (apiKey) headers['X-API-Key'] = apiKey;
  const resp = await fetch(`${gatewayUrl.replace(/\/+$/, '')}/tokens`, {
    method: 'POST', headers, body: JSON.stringify({ app_scope: appScope }),
  });
  const body = await resp.json().catch(() => null);
  if (!resp.ok || !body || !body.access_token) {
    const inner = requestError(body);
    const error = new Error(`POST /tokens: HTTP ${resp.status} ${inner ? inner.Text : ''}`.trim());
    error.status = resp.status;
    error.reason = inner ? inner.Text : '';
    throw error;
  }
  return body.access_token;
}

// the spec's other methods, one module per part (plain ES modules, no build step)
const helpers = { ENDED, MEDIA_TIMEOUT_MS, now, calledPartyUri };
installCallControl(Phone, helpers);
installConferences(Phone, Call, helpers);
