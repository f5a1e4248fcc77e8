"""The upstream clients: Lucca's REST API, Elevo's SCIM API, and what they share."""
