"""What a call's party is: a WebRTC leg (webrtc/) or a bot in this process (local/); each
implements the core's endpoint protocol, and :mod:`.kinds` chooses between them."""
