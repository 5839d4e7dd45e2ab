"""Who is asking and what they may do: principals, passwords, tokens, scopes."""
