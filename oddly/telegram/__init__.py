"""Telegram delivery: what an alert looks like as a message (`message`, `chart`), the sender that
drains the outbox through python-telegram-bot (`sender`, `oddly send`), and a local fake Bot API
(`fake_api`, `oddly fake-telegram`) for the demo and the tests when there is no token."""
