// Replaying one session's recording (tests/contract/sequences/*.json) to phone.js in the
// page: the JavaScript twin of tests/contract/replay.py. The page's fetch and WebSocket are
// the recording (a fake transport in the page): the application's calls are made at their
// recorded places, every request the Phone sends must be the recorded one (method, path, the
// headers that say what it asks, the body's parts), replies and events come in the recorded
// order. The gateway's end of each call's media is a second RTCPeerConnection in the page,
// so `<offer>` / `<answer>` in the recording become real SDP and the Phone's peer connection
// really connects (phone.js says connected only then).

import { Phone } from '/static/phone.js';

const SESSION = '/RTC/v1/sessions/session';
const STEP_MS = 10000;
const ASKS = ['x-calls-action', 'x-conference-action', 'x-delete-reason', 'x-modId', 'x-transferTargetCallId'];

// the Python Phone's methods (the recording's names) as phone.js spells and takes them
const METHODS = {
  dial: (p, to) => p.dial({ destination: to, mediaType: 'audio' }),
  add_call: (p, to) => p.addCall({ destination: to, mediaType: 'audio' }),
  answer: (p) => p.answer({}),
  hangup: (p) => p.hangup(),
  cancel: (p) => p.cancel(),
  reject: (p) => p.reject(),
  hold: (p) => p.hold(),
  resume: (p) => p.resume(),
  transfer: (p) => p.transfer(),
  move: (p) => p.move(),
  upgrade: (p) => p.upgrade(),
  downgrade: (p) => p.downgrade(),
  accept_modification: (p) => p.acceptModification(),
  reject_modification: (p) => p.rejectModification(),
  start_conference: (p) => p.startConference({ mediaType: 'audio' }),
  add_participant: (p, id) => p.addParticipant(id),
  join_conference: (p) => p.joinConference({}),
  end_conference: (p) => p.endConference(),
  logout: (p) => p.logout(),
};

function resolve(value) {
  if (typeof value === 'string') return value.replace(/\{((?:session|call|conference|mod)(?:-\d+)?)\}/g, '$1');
  if (Array.isArray(value)) return value.map(resolve);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  return value;
}

function told(name, data) {
  if (name === 'call:state-changed') return [name, data.index, data.oldState, data.newState];
  if (name === 'error') return [name, data.ErrorCode];
  if (name === 'call:media-modification') return [name, data.newMediaType, data.accepted];
  if (data && typeof data === 'object' && 'message' in data) return [name, data.message];
  return name;
}

/** Until no call's media is still connecting (ICE with the gateway's end): the Python
 *  Phone's in-process media is up at once, a peer connection takes a moment. */
async function quiet(phone, gateway) {
  const connecting = (c) => {
    const far = gateway.pcs.get(`${phone.sessionPath}/${c.breed === 'call' ? 'calls' : 'conferences'}/${c.id}`);
    return far && far.remoteDescription && c.pc.remoteDescription
      && ['new', 'connecting'].includes(c.pc.connectionState);
  };
  const busy = () => phone.calls.some(connecting);
  await within((async () => { while (busy()) await new Promise((r) => setTimeout(r, 5)); })(), 'bring its media up');
  await ticks();
}

const ticks = async (n = 10) => { for (let i = 0; i < n; i += 1) await new Promise((r) => setTimeout(r, 0)); };

function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`the Phone did not ${what}`)), STEP_MS); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function gathered(pc) {
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((r) => {
      const check = () => { if (pc.iceGatheringState === 'complete') { pc.removeEventListener('icegatheringstatechange', check); r(); } };
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
  return pc.localDescription.sdp;
}

/** The gateway's end of each call's media: it answers the Phone's offers and offers what the
 *  recording's events offer. */
class GatewayEnd {
  constructor() {
    this.pcs = new Map(); // by the call's path
    this.answers = new Map(); // the last answer to the Phone's offer, by path
    this.placing = null;
  }

  _pc(path) {
    if (!this.pcs.has(path)) {
      const pc = new RTCPeerConnection();
      this.pcs.set(path, pc);
    }
    return this.pcs.get(path);
  }

  async took(path, body) {
    const part = Object.values(body || {}).find((p) => p && typeof p === 'object' && typeof p.sdp === 'string');
    if (!part) return;
    const placing = path.endsWith('/calls') || path.endsWith('/conferences');
    const pc = placing ? new RTCPeerConnection() : this._pc(path);
    if (pc.signalingState === 'have-local-offer') { // the Phone answers the gateway's offer
      await pc.setRemoteDescription({ type: 'answer', sdp: part.sdp });
      return;
    }
    await pc.setRemoteDescription({ type: 'offer', sdp: part.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    const answer = await gathered(pc);
    if (placing) this.placing = { pc, answer };
    else this.answers.set(path, answer);
  }

  placed(location) {
    if (!this.placing) return;
    this.pcs.set(location, this.placing.pc);
    this.answers.set(location, this.placing.answer);
    this.placing = null;
  }

  async sdp(path, kind) {
    if (kind === '<answer>') return this.answers.get(path);
    const pc = this._pc(path);
    if (!pc.getTransceivers().length) pc.addTransceiver('audio', { direction: 'sendrecv' });
    await pc.setLocalDescription(await pc.createOffer());
    return gathered(pc);
  }

  close() {
    for (const pc of this.pcs.values()) pc.close();
  }
}

class FakeSocket extends EventTarget {
  constructor() {
    super();
    FakeSocket.last = this;
    setTimeout(() => this.dispatchEvent(new Event('open')), 0);
  }

  deliver(obj) {
    const data = JSON.stringify({ events: { eventList: [{ eventObject: obj }] } });
    this.dispatchEvent(new MessageEvent('message', { data }));
  }

  close() {
    setTimeout(() => this.dispatchEvent(new Event('close')), 0);
  }
}

/** Play `wire` to a new Phone: what it told the application of `toldEvents` (the
 *  recording's event names), as the recording's `expect`. */
export async function replay(wire, name, toldEvents) {
  const requests = [];
  let wake = null;
  const replies = [];
  let scripted = false;
  window.WebSocket = FakeSocket;
  window.fetch = async (url, init = {}) => {
    const path = new URL(url, location.origin).pathname.replace(/%40/g, '@').replace(/%3A/gi, ':');
    if (!scripted) {
      const created = path === '/RTC/v1/sessions' || path.endsWith('/websockets');
      const where = path === '/RTC/v1/sessions' ? SESSION : '/events/session';
      return new Response(null, { status: created ? 201 : 204, headers: created ? { Location: where, 'x-expires': '0' } : {} });
    }
    const reply = new Promise((r) => replies.push(r));
    requests.push({ method: init.method || 'GET', path, body: init.body ? JSON.parse(init.body) : undefined, headers: init.headers || {} });
    if (wake) wake();
    return reply;
  };
  const nextRequest = async () => {
    while (!requests.length) await new Promise((r) => { wake = r; });
    wake = null;
    return requests.shift();
  };

  // with the microphone granted Chromium offers real host candidates, not mDNS names that
  // nothing here resolves: the gateway's end may offer before the Phone asks for it
  (await navigator.mediaDevices.getUserMedia({ audio: true })).getTracks().forEach((t) => t.stop());
  const phone = new Phone({ gatewayUrl: location.origin, name });
  const gateway = new GatewayEnd();
  const events = [];
  const states = {};
  for (const event of toldEvents) {
    phone.on(event, (data) => {
      events.push(told(event, data));
      if (event === 'call:state-changed') states[String(data.index)] = data.newState;
    });
  }
  await phone.login({ token: 'replay' });
  events.length = 0; // session:ready is not the calls'
  scripted = true;
  const doing = [];
  try {
    for (const step of wire) {
      await quiet(phone, gateway);
      if (step.do) {
        doing.push(METHODS[step.do](phone, ...(step.args || [])));
      } else if (step.send) {
        const { method, path, body, headers } = await within(nextRequest(), `send ${step.send.join(' ')}`);
        const got = { send: [method, path] };
        const asks = Object.fromEntries(ASKS.filter((k) => k in headers).map((k) => [k, headers[k]]));
        if (Object.keys(asks).length) got.headers = asks;
        if (body && typeof body === 'object' && Object.keys(body).length) got.body = Object.keys(body).sort();
        const want = resolve(step);
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`the Phone sent ${JSON.stringify(got)}, the recording ${JSON.stringify(want)}`);
        await gateway.took(path, body);
      } else if ('reply' in step) {
        const headers = resolve(step.headers || {});
        if (headers.Location) gateway.placed(headers.Location);
        replies.shift()(new Response(null, { status: step.reply, headers }));
      } else {
        const obj = resolve(step.event);
        if (obj.sdp === '<offer>' || obj.sdp === '<answer>') obj.sdp = await gateway.sdp(obj.resourceURL, obj.sdp);
        FakeSocket.last.deliver(obj);
        // handled (or waiting for a reply still to come, as an early event does)
        await Promise.race([phone._channel, new Promise((r) => setTimeout(r, 200))]);
      }
      await ticks();
    }
    await within(Promise.all(doing), 'finish what the application asked');
    await quiet(phone, gateway);
  } finally {
    scripted = false;
    gateway.close();
  }
  return { events, calls: states };
}

window.replay = replay;
