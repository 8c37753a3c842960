"""OAuth 2.0 for hosted MCP clients: an authorization server on Authlib, and its tokens' resolution."""
