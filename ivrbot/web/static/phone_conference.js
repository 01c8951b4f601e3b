// The Phone's conference methods (spec/phone-api.md): startConference, addParticipant,
// removeParticipant, getParticipants, joinConference, rejectConference, endConference; hold
// and resume work on a conference too. The same checks, wire requests and events as
// ivrbot/phone/conference.py. Installed on Phone by phone.js.

const MEDIA_TYPES = ['audio', 'video'];

export function installConferences(Phone, Call, { ENDED, MEDIA_TIMEOUT_MS, now, calledPartyUri }) {
  const LIVE = (c) => !ENDED.has(c.state) && c.state !== 'disconnecting';
  const base = {
    holdCall: Phone.prototype._holdCall,
    resumeCall: Phone.prototype._resumeCall,
    endCall: Phone.prototype._endCall,
  };

  function newConference(phone, direction, peer, hosting, mediaType = 'audio') {
    const call = phone._newCall(direction, peer, mediaType);
    call.breed = 'conference';
    call.hosting = hosting;
    call.participants = {}; // uri -> {participant, status}
    call.invitations = {}; // uri -> 'pending' | 'accepted' | 'rejected' | ...
    const plain = Call.prototype.eventData;
    call.eventData = (extra = {}) => plain.call(call, {
      invitations: { ...call.invitations }, participants: { ...call.participants }, ...extra,
    });
    return call;
  }

  function setParticipant(call, uri, status, invitation) {
    if (status) call.participants[uri] = { participant: uri, status };
    else delete call.participants[uri];
    if (invitation) call.invitations[uri] = invitation;
  }

  const methods = {
    _conferencePath(call) {
      return `${this.sessionPath}/conferences/${call.id}`;
    },

    _hostedConference(currentOnly = false) {
      const candidates = currentOnly ? [this.currentCall] : [this.currentCall, ...this.calls];
      return candidates.find((c) => c && c.breed === 'conference' && c.hosting && LIVE(c)) || null;
    },

    async _holdOtherCall(method, code) {
      const current = this.currentCall;
      if (current && current.state === 'connected') await this._holdCall(current, method, code, true);
    },

    /** Open a conference hosted by this Phone. */
    startConference(options) {
      return this._run('startConference', '3100', async () => {
        const method = 'startConference';
        if (!this.online) this._fail(method, '0002', 'network offline');
        if (!options) this._fail(method, '3101', 'startConference needs {mediaType, localMedia?, remoteMedia?}');
        const { localMedia, remoteMedia, mediaType } = options;
        if (!MEDIA_TYPES.includes(mediaType)) this._fail(method, '3111', "mediaType is required: 'audio' or 'video'");
        this._checkMedia(method, ['3121', '3122'], localMedia, remoteMedia);
        if (!this.loggedIn) this._fail(method, '3131', 'not logged in');
        if (this.calls.filter((c) => !ENDED.has(c.state)).length >= 2) this._fail(method, '3961', 'there are already two calls');
        await this._holdOtherCall(method, '3100');
        const call = newConference(this, 'outgoing', '', true, mediaType);
        this.foreground = call;
        await this._attach(method, call, localMedia, remoteMedia);
        await call.pc.setLocalDescription(await call.pc.createOffer());
        const body = { conference: { sdp: await call.localSdp() } };
        let resp;
        try {
          resp = await this._request(method, '3100', 'POST', `${this.sessionPath}/conferences`, body);
        } catch (e) {
          this._forget(call, 'disconnected');
          throw e;
        }
        if (resp.status !== 201) {
          this._forget(call, 'disconnected');
          this._apiFail(method, '3100', resp);
        }
        call.id = resp.headers.get('Location').replace(/\/+$/, '').split('/').pop();
        call.setState('connecting');
        this._publish('conference:connecting', call.eventData());
        const early = (this._earlyConference || new Map()).get(call.id) || [];
        this._earlyConference?.delete(call.id);
        for (const obj of early) await this._onConferenceEvent(obj);
        return call;
      });
    },

    /** Invite `id` (a number or user@domain, as for dial) to the hosted conference. */
    addParticipant(id) {
      return this._run('addParticipant', '3600', async () => {
        const method = 'addParticipant';
        if (!this.online) this._fail(method, '0002', 'network offline');
        if (typeof id !== 'string' || !id.trim()) this._fail(method, '3611', 'the participant must be a non-empty string');
        if (id.includes('sip:') || id.includes('tel:')) this._fail(method, '3612', 'the participant must not contain sip: or tel:');
        if (id.split('@').length > 2) this._fail(method, '3613', 'the participant has more than one @');
        if (!this.loggedIn) this._fail(method, '3621', 'not logged in');
        const call = this._hostedConference(true);
        if (!call) this._fail(method, '3631', 'the current call is not a conference this Phone hosts');
        const uri = calledPartyUri(id.trim(), this.domain);
        if (uri === null) this._fail(method, '3611', `${JSON.stringify(id)} is not a callable number or address`);
        if (uri in call.participants) this._fail(method, '3641', `${uri} is already a participant`);
        this._publish('conference:invitation-sending', { invitee: uri, timestamp: now() });
        setParticipant(call, uri, 'invited', 'pending');
        let resp;
        try {
          resp = await this._request(method, '3600', 'PUT', `${this._conferencePath(call)}/participants/${uri}`, {});
          if (!resp.ok) this._apiFail(method, '3600', resp);
        } catch (e) {
          if (call.participants[uri]?.status === 'invited') {
            setParticipant(call, uri, null, null);
            delete call.invitations[uri];
          }
          throw e;
        }
        this._publish('conference:invitation-sent', call.eventData({ invitee: uri, modId: resp.headers.get('x-modId') || '' }));
      });
    },

    removeParticipant(id) {
      return this._run('removeParticipant', '3700', async () => {
        const method = 'removeParticipant';
        if (!this.online) this._fail(method, '0002', 'network offline');
        if (typeof id !== 'string' || !id.trim()) this._fail(method, '3711', "removeParticipant needs the participant's id");
        if (!this.loggedIn) this._fail(method, '3721', 'not logged in');
        const call = this._hostedConference();
        if (!call) this._fail(method, '3731', 'this Phone hosts no conference');
        const key = id.trim();
        const uri = /^(sip|tel):/.test(key) ? key : calledPartyUri(key, this.domain);
        if (uri === null || !(uri in call.participants)) this._fail(method, '3700', `${JSON.stringify(id)} is not a participant of the conference`);
        const resp = await this._request(method, '3700', 'DELETE', `${this._conferencePath(call)}/participants/${uri}`);
        if (!resp.ok) this._apiFail(method, '3700', resp);
      });
    },

    /** {uri: {participant, status}} of the hosted conference (invited and joined). */
    getParticipants() {
      return this._run('getParticipants', '3400', () => {
        if (!this.loggedIn) this._fail('getParticipants', '3401', 'not logged in');
        const call = this._hostedConference();
        if (!call) this._fail('getParticipants', '3402', 'this Phone hosts no conference');
        return Object.fromEntries(Object.entries(call.participants).map(([k, v]) => [k, { ...v }]));
      });
    },

    _pendingConference() {
      const call = this._pendingIncoming();
      return call && call.breed === 'conference' ? call : null;
    },

    /** Join the conference this Phone is invited to (`action` as for answer). */
    joinConference(options = {}) {
      return this._run('joinConference', '3200', async () => {
        const method = 'joinConference';
        if (!this.online) this._fail(method, '0002', 'network offline');
        if (!options) this._fail(method, '3201', 'joinConference needs {localMedia?, remoteMedia?, action?}');
        const { localMedia, remoteMedia, action } = options;
        this._checkMedia(method, ['3211', '3212'], localMedia, remoteMedia);
        if (!this.loggedIn) this._fail(method, '3221', 'not logged in');
        const call = this._pendingConference();
        if (!call) this._fail(method, '3231', 'there is no conference invitation to join');
        const others = this.calls.filter((c) => c !== call && !ENDED.has(c.state));
        if (![undefined, null, 'hold', 'end'].includes(action) || (others.length && !action)) this._fail(method, '3241', "action must be 'hold' or 'end' (needed with a call)");
        if (others.length && action === 'end') {
          for (const other of others) await this._endCall(other, 'terminate');
        } else if (others.length) {
          await this._holdOtherCall(method, '3200');
        }
        this._publish('conference:joining', { from: call.peer, mediaType: call.mediaType, codec: '', timestamp: now() });
        await call.pc.setRemoteDescription({ type: 'offer', sdp: call.remoteSdp });
        await this._attach(method, call, localMedia, remoteMedia);
        await call.pc.setLocalDescription(await call.pc.createAnswer());
        const body = { conferenceModifications: { sdp: await call.localSdp() } };
        const resp = await this._request(method, '3200', 'PUT', this._conferencePath(call), body, { 'x-conference-action': 'call-answer' });
        if (!resp.ok) {
          this._forget(call, 'disconnected');
          this._apiFail(method, '3200', resp);
        }
        this.foreground = call;
        call.setState('connecting');
        this._publish('conference:connecting', call.eventData());
        return call;
      });
    },

    rejectConference() {
      return this._run('rejectConference', '3300', async () => {
        const method = 'rejectConference';
        if (!this.online) this._fail(method, '0002', 'network offline');
        if (!this.loggedIn) this._fail(method, '3301', 'not logged in');
        const call = this._pendingConference();
        if (!call) this._fail(method, '3302', 'there is no conference invitation to reject');
        const resp = await this._request(method, '3300', 'DELETE', this._conferencePath(call), undefined, { 'x-delete-reason': 'reject' });
        if (!resp.ok) this._apiFail(method, '3300', resp);
        this._forget(call, 'rejected');
        this._publish('conference:invitation-rejected', call.eventData());
      });
    },

    /** The host ends the conference for everyone; a participant leaves it. */
    endConference() {
      return this._run('endConference', '3500', async () => {
        if (!this.online) this._fail('endConference', '0002', 'network offline');
        if (!this.loggedIn) this._fail('endConference', '3501', 'not logged in');
        const call = [this.currentCall, ...this.calls].find((c) => c && c.breed === 'conference' && LIVE(c));
        if (!call) this._fail('endConference', '3502', 'there is no conference to end');
        await this._endCall(call, 'terminate');
      });
    },

    // the Phone's primitives, for conferences ------------------------------------------------
    async _holdCall(call, method, code, auto) {
      if (call.breed !== 'conference') return base.holdCall.call(this, call, method, code, auto);
      await this._conferenceAction(method, code, call, 'initiate-hold');
      call.autoHeld = auto;
      call.setState('held');
      this._publish('conference:held', call.eventData());
    },

    async _resumeCall(call, method, code) {
      if (call.breed !== 'conference') return base.resumeCall.call(this, call, method, code);
      await this._conferenceAction(method, code, call, 'initiate-resume');
      call.autoHeld = false;
      call.setState('connected');
      this._publish('conference:resumed', call.eventData());
    },

    async _conferenceAction(method, code, call, action) {
      const direction = action === 'initiate-hold' ? 'sendonly' : 'sendrecv';
      const resp = await this._offerChange(method, code, call, direction, this._conferencePath(call),
        { 'x-conference-action': action }, 'conferenceModifications');
      await this._changeSettled(method, code, call, resp.headers.get('x-modId'), MEDIA_TIMEOUT_MS);
    },

    async _endCall(call, reason) {
      if (call.breed !== 'conference') return base.endCall.call(this, call, reason);
      if (ENDED.has(call.state)) return;
      call.setState('disconnecting');
      this._publish('conference:disconnecting', call.eventData());
      if (reason && call.id && this.sessionPath) {
        await this._send('DELETE', this._conferencePath(call), undefined, { 'x-delete-reason': reason }).catch(() => {});
      }
      this._forget(call, 'disconnected');
      this._publish('conference:ended', call.eventData({ message: call.hosting ? 'Conference ended' : 'Call terminated' }));
    },

    // the event channel ----------------------------------------------------------------------
    async _onConferenceEvent(obj) {
      const state = String(obj.state || '');
      const url = String(obj.resourceURL || '');
      const cid = url.replace(/\/+$/, '').split('/').pop();
      if (state === 'invitation-received') { await this._conferenceInvitation(obj, url, cid); return; }
      const call = this.calls.find((c) => c.breed === 'conference' && c.id === cid);
      if (!call) { // before the reply to POST .../conferences named it: kept for then
        this._earlyConference = this._earlyConference || new Map();
        if (!this._earlyConference.has(cid)) this._earlyConference.set(cid, []);
        this._earlyConference.get(cid).push(obj);
        return;
      }
      if (state === 'session-open') {
        if (typeof obj.sdp === 'string' && call.hosting && !call.pc.remoteDescription) {
          await call.pc.setRemoteDescription({ type: 'answer', sdp: obj.sdp });
        }
        this._whenMediaUp(call, 'conference:connected');
      } else if (state === 'mod-terminated' && !obj.participant) {
        call.modResult(String(obj.modId || '')).resolve(obj); // this Phone's hold / resume
      } else if (['session-modified', 'mod-terminated'].includes(state) && call.hosting) {
        this._participantChanged(call, state, obj);
      } else if (state === 'session-terminated' && 'reason' in obj) {
        const reason = String(obj.reason || '');
        call.endReason = reason;
        if (call.state === 'created' && call.direction === 'incoming') {
          this._forget(call, 'canceled');
          this._publish('conference:canceled', call.eventData({ message: reason }));
        } else if (!ENDED.has(call.state)) {
          this._forget(call, 'disconnected');
          this._publish('conference:ended', call.eventData({ message: reason }));
        }
      }
    },

    async _conferenceInvitation(obj, url, cid) {
      if (this._pendingIncoming() || this.calls.filter((c) => !ENDED.has(c.state)).length >= 2) {
        this._publish('notification', { message: 'a conference invitation was refused', timestamp: now() });
        await this._send('DELETE', url, undefined, { 'x-delete-reason': 'reject' }).catch(() => {});
        return;
      }
      const call = newConference(this, 'incoming', String(obj.from || ''), false);
      call.id = cid;
      call.remoteSdp = obj.sdp;
      this._publish('conference:invitation-received', { from: call.peer, mediaType: call.mediaType, codec: '', timestamp: now() });
    },

    _participantChanged(call, state, obj) {
      const uri = String(obj.participant || '');
      const reason = String(obj.reason || '');
      const status = String(obj.status || '');
      const joined = (state === 'mod-terminated' && reason === 'success') || (state === 'session-modified' && status === 'joined');
      if (!uri || (!(uri in call.participants) && !joined)) return;
      if (joined) {
        setParticipant(call, uri, 'joined', 'accepted');
        this._publish('conference:invitation-accepted', call.eventData({ invitee: uri }));
      } else if (state === 'session-modified' && ['removed', 'left'].includes(status)) {
        setParticipant(call, uri, null, status);
        this._publish('conference:participant-removed', call.eventData({ participant: uri, message: reason || 'Removed from conference' }));
      } else if (state === 'mod-terminated' && reason === 'Call canceled') {
        setParticipant(call, uri, null, 'canceled');
        this._publish('conference:participant-removed', call.eventData({ participant: uri, message: reason }));
      } else if (state === 'mod-terminated') {
        setParticipant(call, uri, null, 'rejected');
        this._publish('conference:invitation-rejected', call.eventData({ invitee: uri, message: reason }));
      }
    },
  };
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(Phone.prototype, name, { value: fn, writable: true, configurable: true });
  }
}
