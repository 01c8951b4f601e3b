"""SIP: trunks and accounts, PJSIP on its own thread, SIP calls as parties of the switch."""
