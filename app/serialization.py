"""How jobs are written to Redis: orjson, never pickle (anyone who can write Redis could run
code in a worker that unpickles)."""

from __future__ import annotations

from functools import partial

import orjson

# Exceptions stored as job results cannot be encoded by orjson; repr() them instead.
job_serializer = partial(orjson.dumps, default=repr)
job_deserializer = orjson.loads
