"""Describe cache, describe -> marshmallow schema factory, contracts, JSON Schema/OpenAPI."""
