"""Consumer access: API keys and scopes, rate limits, CORS, abuse protection, link tokens."""
