from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

from app.crypto import SecretBox, SecretDecryptError, SecretKeyError
from app.secret import Secret


def new_key() -> Secret:
    return Secret(Fernet.generate_key().decode())


def test_round_trip() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("acme", "lucca.api_key", "s3cr3t-value")
    assert "s3cr3t-value" not in token
    assert box.decrypt("acme", "lucca.api_key", token) == Secret("s3cr3t-value")


def test_each_encryption_differs() -> None:
    box = SecretBox([new_key()])
    assert box.encrypt("acme", "p", "v") != box.encrypt("acme", "p", "v")


def test_unicode_and_empty_values_round_trip() -> None:
    box = SecretBox([new_key()])
    for value in ("", "clé-é-☃", '{"tenant": "other"}'):
        assert box.decrypt("acme", "p", box.encrypt("acme", "p", value)).reveal() == value


def test_token_is_bound_to_its_tenant() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("acme", "lucca.api_key", "s3cr3t-value")
    with pytest.raises(SecretDecryptError) as info:
        box.decrypt("globex", "lucca.api_key", token)
    assert "s3cr3t-value" not in str(info.value)
    assert token not in str(info.value)
    assert "globex" in str(info.value)


def test_token_is_bound_to_its_purpose() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("acme", "lucca.api_key", "s3cr3t-value")
    with pytest.raises(SecretDecryptError, match=r"elevo\.token"):
        box.decrypt("acme", "elevo.token", token)


def test_tenant_and_purpose_cannot_be_confused_by_concatenation() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("a", "bc", "v")
    with pytest.raises(SecretDecryptError):
        box.decrypt("ab", "c", token)


def test_wrong_key_fails_without_echo() -> None:
    token = SecretBox([new_key()]).encrypt("acme", "p", "s3cr3t-value")
    with pytest.raises(SecretDecryptError) as info:
        SecretBox([new_key()]).decrypt("acme", "p", token)
    assert token not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAA" + "x" * 80, "é"])
def test_garbage_token_fails(token: str) -> None:
    with pytest.raises(SecretDecryptError):
        SecretBox([new_key()]).decrypt("acme", "p", token)


def test_foreign_fernet_plaintext_is_rejected() -> None:
    key = new_key()
    token = Fernet(key.reveal().encode()).encrypt(b"plain value").decode()
    with pytest.raises(SecretDecryptError):
        SecretBox([key]).decrypt("acme", "p", token)


def test_rotation_with_two_keys() -> None:
    old, new = new_key(), new_key()
    old_token = SecretBox([old]).encrypt("acme", "elevo.token", "tok")
    both = SecretBox([new, old])
    assert both.decrypt("acme", "elevo.token", old_token).reveal() == "tok"
    rotated = both.rotate("acme", "elevo.token", old_token)
    assert SecretBox([new]).decrypt("acme", "elevo.token", rotated).reveal() == "tok"
    with pytest.raises(SecretDecryptError):
        SecretBox([old]).decrypt("acme", "elevo.token", rotated)
    with pytest.raises(SecretDecryptError):
        SecretBox([new]).decrypt("acme", "elevo.token", old_token)


def test_first_key_encrypts() -> None:
    first, second = new_key(), new_key()
    token = SecretBox([first, second]).encrypt("acme", "p", "v")
    assert SecretBox([first]).decrypt("acme", "p", token).reveal() == "v"
    with pytest.raises(SecretDecryptError):
        SecretBox([second]).decrypt("acme", "p", token)


def test_rotate_checks_the_binding() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("acme", "p", "v")
    with pytest.raises(SecretDecryptError):
        box.rotate("globex", "p", token)


@pytest.mark.parametrize(
    "bad",
    [
        "short-and-secret",
        base64.urlsafe_b64encode(b"x" * 31).decode(),
        "!" * 44,
        "",
    ],
)
def test_malformed_key_is_rejected_without_echo(bad: str) -> None:
    with pytest.raises(SecretKeyError) as info:
        SecretBox([new_key(), Secret(bad)])
    assert isinstance(info.value, ValueError)
    assert "#2" in str(info.value)
    if bad:
        assert bad not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_no_key_is_rejected() -> None:
    with pytest.raises(SecretKeyError, match="no key"):
        SecretBox([])


def test_repr_hides_keys() -> None:
    key = new_key()
    assert key.reveal() not in repr(SecretBox([key]))
