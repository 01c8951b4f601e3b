// The Phone's two-call methods (spec/phone-api.md): addCall, switchCall, transfer, move,
// upgrade / downgrade and accepting or rejecting a media modification, with the same checks
// in the same order as ivrbot/phone/call_control.py. Installed on Phone by phone.js.

export function installCallControl(Phone, { ENDED }) {
  const methods = {
    /** Hold the current call (resumed automatically later) and dial a second one. */
    addCall(options) {
      return this._run('addCall', '3900', async () => {
        const { destination, mediaType, localMedia, remoteMedia } = this._checkDial('addCall', '39', options);
        const current = this.currentCall;
        if (!current || !['connected', 'held'].includes(current.state)) this._fail('addCall', '3951', 'there is no established call to add a call to');
        if (this.calls.filter((c) => !ENDED.has(c.state)).length >= 2) this._fail('addCall', '3961', 'there are already two calls');
        if (current.state === 'connected') await this._holdCall(current, 'addCall', '3900', true);
        return this._place('addCall', ['3911', '3900'], destination, mediaType, localMedia, remoteMedia);
      });
    },

    /** Swap the foreground and background calls (hold one, resume the other). */
    switchCall() {
      return this._run('switchCall', '4200', async () => {
        if (!this.loggedIn) this._fail('switchCall', '4201', 'not logged in');
        const current = this.currentCall;
        if (!current) this._fail('switchCall', '4202', 'no call');
        const other = this.backgroundCall;
        if (!other) this._fail('switchCall', '4203', 'switching needs two calls');
        if (current.state === 'connected') await this._holdCall(current, 'switchCall', '4200', true);
        if (other.state === 'held') await this._resumeCall(other, 'switchCall', '4200');
        this.foreground = other;
        this._publish('session:call-switched', { from: current.eventData(), to: other.eventData(), timestamp: Date.now() });
      });
    },

    /** Join the far parties of the two calls together; this Phone leaves both. */
    transfer() {
      return this._run('transfer', '4100', async () => {
        if (!this.online) this._fail('transfer', '0002', 'network offline');
        if (!this.loggedIn) this._fail('transfer', '4101', 'not logged in');
        const current = this.currentCall;
        if (!current) this._fail('transfer', '4102', 'no call');
        const background = this.backgroundCall;
        if (background && background.state !== 'held') this._fail('transfer', '4103', 'the background call must be on hold');
        if (current.breed === 'conference' || (background && background.breed === 'conference')) this._fail('transfer', '4104', 'a conference cannot be transferred');
        if (!background) this._fail('transfer', '4105', 'transfer needs two calls');
        current.setState('transferring');
        this._publish('call:transferring', current.eventData());
        try {
          await this._callAction('transfer', '4100', current, 'initiate-call-transfer', { 'x-transferTargetCallId': background.id });
        } catch (e) {
          if (current.state === 'transferring') current.setState('connected');
          throw e;
        }
      });
    },

    /** Move the connected call to another session of this identity (it rings there). */
    move() {
      return this._run('move', '4000', async () => {
        const call = this._common('move', ['4001', '4002']);
        if (call.state !== 'connected') this._fail('move', '4003', `only a connected call can be moved (it is ${call.state})`);
        if (call.breed === 'conference') this._fail('move', '4004', 'a conference cannot be moved');
        call.setState('move-initiated'); // before the request: move-terminated may come first
        try {
          await this._callAction('move', '4000', call, 'initiate-call-move');
        } catch (e) {
          call.setState('connected');
          throw e;
        }
      });
    },

    upgrade() {
      return this._run('upgrade', '4600', () => this._modify('upgrade', ['4600', '4601', '4602', '4603', '4604', '4605'], 'video'));
    },

    downgrade() {
      return this._run('downgrade', '4500', () => this._modify('downgrade', ['4500', '4501', '4502', '4503', '4504', '4505'], 'audio'));
    },

    acceptModification() {
      return this._run('acceptModification', '4300', () => this._settle('acceptModification', ['4300', '4301', '4302', '4303', '4304'], true));
    },

    rejectModification() {
      return this._run('rejectModification', '4400', () => this._settle('rejectModification', ['4400', '4401', '4402', '4403', '4404'], false));
    },

    async _modify(method, codes, to) {
      const call = this._common(method, [codes[1], codes[2]]);
      if (call.state !== 'connected') this._fail(method, codes[3], `the call must be connected (it is ${call.state})`);
      if (call.mediaType === to) this._fail(method, codes[4], `the call is already ${to}`);
      if (call.breed === 'conference') this._fail(method, codes[5], 'a conference cannot change media');
      const kind = to === 'video' ? 'upgrade' : 'downgrade';
      const resp = await this._offerChange(method, codes[0], call, 'sendrecv', `${this.sessionPath}/calls/${call.id}`,
        { 'x-calls-action': 'initiate-call-mod' }, 'callsMediaModifications', { type: kind });
      call.setState('modification-initiated');
      this._publish('call:modification-in-progress', call.eventData({ newMediaType: to }));
      const modId = resp.headers.get('x-modId');
      this._changeSettled(method, codes[0], call, modId, null)  // the far end decides, in its time
        .then((obj) => { if (obj) this._modSettled(call, obj); })
        .catch(() => {});  // the call ended first
    },

    async _settle(method, codes, accept) {
      const call = this._common(method, [codes[1], codes[2]]);
      if (!['connected', 'held'].includes(call.state)) this._fail(method, codes[3], `the call must be connected or held (${call.state})`);
      if (!call.pendingMod) this._fail(method, codes[4], 'no media modification is pending');
      const { modId } = call.pendingMod;
      let body = {};
      const offer = call.modOffer;
      call.modOffer = null;
      if (offer) { // answered either way: the gateway's offer needs its answer
        await call.pc.setRemoteDescription({ type: 'offer', sdp: offer });
        await call.pc.setLocalDescription(await call.pc.createAnswer());
        body = { callsMediaModifications: { sdp: await call.localSdp() } };
      }
      await this._callAction(method, codes[0], call, accept ? 'accept-call-mod' : 'reject-call-mod', { 'x-modId': modId }, body);
      const obj = await this._changeSettled(method, codes[0], call, modId, 10000);
      this._modSettled(call, obj);
    },

    _modSettled(call, obj) {
      if (ENDED.has(call.state)) return;
      call.pendingMod = null;
      const accepted = ['success', 'accepted'].includes(obj.reason);
      const back = call.state === 'held' ? 'held' : 'connected';
      if (accepted) {
        call.setState('modification-accepted');
        call.mediaType = String(obj.newMediaType || call.mediaType);
      }
      if (['modification-initiated', 'modification-accepted'].includes(call.state)) call.setState(back);
      this._publish('call:media-modification', call.eventData({ newMediaType: call.mediaType, accepted }));
    },

    /** What the gateway tells about a call besides its answer and end. */
    async _onCallChanged(call, state, obj) {
      const reason = String(obj.reason || '');
      if (state === 'session-modified' && reason === 'transferred') {
        call.peer = String(obj.from || call.peer);
        this._publish('notification', call.eventData({ message: `now talking to ${call.peer}` }));
      } else if (state === 'transfer-terminated' && reason === 'success') {
        for (const other of this.calls.filter((c) => !ENDED.has(c.state))) {
          this._forget(other, 'transferred');
          this._publish('call:transferred', other.eventData());
        }
      } else if (state === 'transfer-terminated') {
        call.setState('connected');
        this._publish('warning', { message: `transfer failed: ${reason}` });
      } else if (state === 'move-terminated' && reason === 'moved') {
        this._forget(call, 'moved');
        this._publish('call:moved', call.eventData());
      } else if (state === 'move-terminated') {
        call.setState('move-failed');
        call.setState('connected');
        this._publish('warning', { message: `the call was not moved: ${reason}` });
      } else if (state === 'mod-received') {
        const next = String(obj.newMediaType || '');
        call.pendingMod = { modId: String(obj.modId || ''), mediaType: next };
        call.modOffer = typeof obj.sdp === 'string' ? obj.sdp : null;
        this._publish('call:modification-in-progress', call.eventData({ newMediaType: next }));
      }
    },
  };
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(Phone.prototype, name, { value: fn, writable: true, configurable: true });
  }
}
