"""Followers of the EventLog with a durable cursor each (DESIGN.md): ``push`` sends webhooks."""
