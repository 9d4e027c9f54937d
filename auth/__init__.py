"""Authentication (tokens) and authorization (scopes, roles, tenancy) of DESIGN.md sections 3-4."""
