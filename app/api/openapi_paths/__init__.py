"""The paths of the OpenAPI document (app/api/openapi.py), one module per group of routes.

`common` holds the pieces every group shares: references to the generated schemas, response
and parameter builders, the errors many operations answer, and `guarded` for the operations
behind a bearer token.
"""
