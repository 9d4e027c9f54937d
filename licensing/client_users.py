"""Client users (R16, R17)."""

# A client user works in at most this many of the firm's client companies (R17).
MAX_COMPANIES = 5
