// Listening in to a live call from the dashboard: a receive-only WebRTC connection to the
// gateway, which sends the call's two parties mixed. The page offers no microphone: nothing
// the operator says can reach the call (and the gateway would drop it).

const current = { call: '', pc: null, listener: '', audio: null, stream: null, token: '' };

/** The call listened to ('' for none). */
export function listeningTo() {
  return current.call;
}

/** The stream the page plays while listening (null otherwise). */
export function listenStream() {
  return current.stream;
}

function gathered(pc) {  // the gateway takes one offer with every candidate in it
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 3000);  // take what there is
  });
}

/** Listen to call `callId` (a switch call id), instead of any call listened to before. */
export async function listen(callId, token) {
  await stopListening();
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (ev) => stream.addTrack(ev.track);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const resp = await fetch(`/ivrbot/calls/${encodeURIComponent(callId)}/listen`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sdp: pc.localDescription.sdp }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    pc.close();
    throw new Error(body.error || `HTTP ${resp.status}`);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: body.sdp });
  const audio = new Audio();
  audio.srcObject = stream;
  audio.play().catch(() => {});  // autoplay may wait for a click: the button was one
  Object.assign(current, { call: callId, pc, listener: body.listener, audio, stream, token });
  pc.onconnectionstatechange = () => {
    if (['failed', 'closed'].includes(pc.connectionState) && current.pc === pc) stopListening();
  };
}

/** Stop listening (the gateway also stops when the call ends). */
export async function stopListening() {
  const { pc, listener, audio, token } = current;
  Object.assign(current, { call: '', pc: null, listener: '', audio: null, stream: null });
  document.dispatchEvent(new Event('listening-changed'));
  if (audio) audio.srcObject = null;
  if (pc) pc.close();
  if (listener) {
    await fetch(`/ivrbot/listeners/${encodeURIComponent(listener)}`, {
      method: 'DELETE', headers: { Authorization: `Bearer ${token}` },
    }).catch(() => {});
  }
}
