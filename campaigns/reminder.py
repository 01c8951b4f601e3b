"""Example campaign: the reminder flow (flows/reminder.py) calls the contacts of
reminder_contacts.csv, in their own 08:00-21:00, two calls at a time.

Try it against simulated callees (README: Outbound campaigns)::

    ivrbot campaign create campaigns/reminder.py
    ivrbot campaign callees campaigns/reminder_contacts.csv &
    ivrbot campaign start reminder-demo
    ivrbot campaign status reminder-demo --watch
"""

from ivrbot.campaign.campaign import Campaign, RetryPolicy, Window

campaign = Campaign(
    "reminder-demo",
    flow="reminder",
    contacts="reminder_contacts.csv",
    windows=[Window(("mon", "tue", "wed", "thu", "fri", "sat"), "08:00", "21:00")],
    holidays="US",
    calls_per_minute=30,
    max_concurrent=2,
    ring_timeout_s=10,
    retries={
        "no-answer": RetryPolicy(delay_s=2 * 3600, max_attempts=3),
        "busy": RetryPolicy(delay_s=15 * 60, max_attempts=3),
        "rejected": RetryPolicy(delay_s=4 * 3600, max_attempts=2),
        "failed": RetryPolicy(delay_s=30 * 60, max_attempts=2),
        "interrupted": RetryPolicy(delay_s=60, max_attempts=3),
    },
    machine="message",
)
