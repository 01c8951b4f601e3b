"""The test harness: simulated parties, scenarios and audio checks.

* :mod:`~ivrbot.testing.flowtest`: the flow test kit (a fake caller on a virtual clock, the
  real steps, no media: a flow test in milliseconds); :mod:`~ivrbot.testing.fake_call` is
  its call, :mod:`~ivrbot.testing.clock` its clock, :mod:`~ivrbot.testing.scenario_fast`
  scenario files on it (``ivrbot flows test --fast``).
* :mod:`~ivrbot.testing.caller`: a simulated caller (a real Phone that dials, listens,
  presses keys and speaks) and its :class:`~ivrbot.testing.caller.Ear`.
* :mod:`~ivrbot.testing.callee`: a simulated callee a bot dials (a person or a machine).
* :mod:`~ivrbot.testing.callees`: simulated contacts of a campaign (``ivrbot campaign
  callees``).
* :mod:`~ivrbot.testing.scenario_file` and :mod:`~ivrbot.testing.scenario`: scenario files
  and running them (``ivrbot flows test``); :mod:`~ivrbot.testing.soak`: many calls in a row.
* :mod:`~ivrbot.testing.audio`: test signals and measuring them (sine, Goertzel level).

The production path (``ivrbot run``) imports none of it; only the commands that run
scenarios, simulated parties or the demo do.
"""
