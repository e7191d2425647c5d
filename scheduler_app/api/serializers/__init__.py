"""Serializers for the REST API, one module per resource."""
