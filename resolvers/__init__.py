"""Use cases, one module per aggregate: load, authorize, apply the rules, audit, commit."""
