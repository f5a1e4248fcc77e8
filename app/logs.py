"""JSON logs on stderr, one object per line, with secrets scrubbed as a last line of defence."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# Values that look like credentials, wherever they appear in a message.
_SECRET_PATTERNS = (
    re.compile(r"(lucca application=)[^\s,;\"']+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[^\s,;\"']+", re.IGNORECASE),
    re.compile(r"(redis://[^:/@\s]*:)[^@\s]+(@)"),
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _redact(match: re.Match[str]) -> str:
    tail = match.group(2) if match.lastindex == 2 else ""
    return f"{match.group(1)}***{tail}"


def scrub(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex == 2 else ""), text
        )
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; arq logs job arguments: keep both quieter.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("arq.worker").setLevel(logging.WARNING if level != "DEBUG" else level)
