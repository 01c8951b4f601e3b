"""The Python Phone (docs/spec/phone-api.md): :class:`ivrbot.phone.phone.Phone` is its one
public face; the README's layout section lists the parts behind it."""
