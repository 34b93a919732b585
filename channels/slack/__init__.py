"""The Slack channel: reading events, the reply surface, and translating slack_sdk's errors."""
