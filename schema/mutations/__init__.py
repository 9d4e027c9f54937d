"""Mutations, one module per aggregate; each declares the action and target it needs."""
