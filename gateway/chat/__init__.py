"""The chat application: rooms, messages, subscriptions, recovery and presence."""
