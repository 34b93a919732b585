"""The Telegram channel: rendering, the reply surface, and reading updates."""
