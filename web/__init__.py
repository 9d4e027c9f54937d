"""The HTTP layer beside GraphQL: the OAuth endpoints, their HTML pages and the links sent by email.

Handlers here parse requests and render answers; every domain row is written by a resolver
(DESIGN.md section 5: HTTP -> app -> resolvers -> models).
"""
