"""`{"accept_skip_field_loss": true}`: a full run after the operator accepts the loss of the
skip field (service.md; sync-rules.md, permission loss)."""

from __future__ import annotations

import pytest

from app.api.schemas import parse_trigger
from app.schemas.errors import InvalidDocument
from app.service.runs import RunRequest
from app.store.run_model import RunMode


@pytest.mark.parametrize(
    "raw",
    [b'{"accept_skip_field_loss": true}', b'{"mode": "full", "accept_skip_field_loss": true}'],
)
def test_accepting_the_loss_is_a_full_run(raw: bytes) -> None:
    assert parse_trigger(raw) == RunRequest(mode=RunMode.FULL, accept_skip_field_loss=True)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"accept_skip_field_loss": true, "dry_run": true}', "$"),
        (b'{"accept_skip_field_loss": true, "users": [1]}', "$"),
        (b'{"accept_skip_field_loss": true, "mode": "changes"}', "$"),
        (b'{"accept_skip_field_loss": "yes"}', "$.accept_skip_field_loss"),
    ],
)
def test_accepting_goes_with_a_real_full_run_only(raw: bytes, path: str) -> None:
    with pytest.raises(InvalidDocument) as info:
        parse_trigger(raw)
    assert str(info.value).endswith(f"`{path}`")
