"""The HTTP API: request and response schemas, errors, the OpenAPI document."""
