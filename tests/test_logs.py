"""JSON logs, with credentials scrubbed wherever they appear in a message."""

from __future__ import annotations

import logging

import orjson

from app.logs import JsonFormatter, scrub
from app.secret import Secret


def test_credentials_in_messages_are_scrubbed() -> None:
    text = scrub(
        "GET with Authorization: lucca application=abc-123 and Bearer tok.en "
        "to redis://user:p4ss@host:6379/0"
    )
    assert "abc-123" not in text
    assert "tok.en" not in text
    assert "p4ss" not in text
    assert "lucca application=***" in text


def test_a_record_is_one_json_object_with_its_extras() -> None:
    record = logging.makeLogRecord(
        {"msg": "synced %s", "args": ("416",), "levelname": "INFO", "name": "x", "tenant": "acme"}
    )
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["message"] == "synced 416"
    assert entry["tenant"] == "acme"
    assert entry["level"] == "info"


def test_a_secret_formats_as_stars() -> None:
    secret = Secret("s3cr3t")
    assert f"{secret}" == "***"
    assert "s3cr3t" not in repr(secret)
    assert secret.reveal() == "s3cr3t"
