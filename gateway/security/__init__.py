"""Who may connect, read and send: tokens, room authorization, limits."""
