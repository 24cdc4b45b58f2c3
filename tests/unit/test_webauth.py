"""Who may call a worker's write endpoints: the bearer-token guard."""

import pytest

from brokerapp.model.settings import load_settings
from brokerapp.runtime.webauth import WebAuthError, WriteGuard, is_loopback


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_recognised(bind):
    assert is_loopback(bind)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "broker.example"])
def test_every_other_address_is_beyond_loopback(bind):
    assert not is_loopback(bind)


def test_on_loopback_writes_need_no_token(tmp_path):
    guard = WriteGuard.from_settings(load_settings(home=tmp_path))
    assert guard.refusal(None) is None


def test_beyond_loopback_a_worker_without_a_token_refuses_to_start(tmp_path):
    with pytest.raises(WebAuthError, match="BROKER_WEB_TOKEN"):
        WriteGuard.from_settings(load_settings(home=tmp_path, web_bind="0.0.0.0"))


def test_beyond_loopback_only_the_right_bearer_token_is_let_through(tmp_path):
    settings = load_settings(home=tmp_path, web_bind="0.0.0.0", web_token="right-one")
    guard = WriteGuard.from_settings(settings)
    assert guard.refusal(None) == "this endpoint needs an Authorization: Bearer token"
    assert guard.refusal("Basic cmlnaHQtb25l") == "the Authorization header is not a Bearer token"
    assert guard.refusal("Bearer ") == "the Authorization header is not a Bearer token"
    assert guard.refusal("Bearer wrong-one") == "the bearer token is not valid"
    assert guard.refusal("Bearer right-one") is None
    assert guard.refusal("bearer right-one") is None  # the scheme is case-insensitive


def test_always_requires_the_token_on_loopback_too(tmp_path):
    with pytest.raises(WebAuthError):
        WriteGuard.from_settings(load_settings(home=tmp_path, web_auth="always"))
    guard = WriteGuard.from_settings(load_settings(home=tmp_path, web_auth="always", web_token="t"))
    assert guard.refusal(None) is not None
    assert guard.refusal("Bearer t") is None


def test_a_refusal_never_repeats_the_token(tmp_path):
    guard = WriteGuard.from_settings(
        load_settings(home=tmp_path, web_auth="always", web_token="s3cret-token")
    )
    for header in (None, "Bearer s3cret-tokeX", "Token s3cret-token"):
        assert "s3cret" not in (guard.refusal(header) or "")
