"""A keypad menu for the media worker tests: 1 -> time, 2 -> weather, then the menu again."""

from ivrbot.flow import Flow, Menu, Say

flow = Flow("desk", number="5550002100", description="Keypad menu (media worker tests).")
flow.add(
    Menu(
        "menu",
        "Press one for the time, or two for the weather.",
        options={"1": "time", "2": "weather"},
        timeout_s=20.0,
    ),
    Say("time", "It is twelve o'clock.", next="menu"),
    Say("weather", "It is sunny.", next="menu"),
)
