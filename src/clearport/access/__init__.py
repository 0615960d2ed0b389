"""Who is calling: principals, roles, API keys, authentication and rate limiting."""
