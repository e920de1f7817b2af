"""The simulator's container opt-in: loopback stays the default."""

from __future__ import annotations

import pytest

from simulator.serve import ALLOW_ANY_HOST_ENV, check_loopback, main


def test_non_loopback_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ANY_HOST_ENV, raising=False)
    check_loopback("127.0.0.1")
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        check_loopback("0.0.0.0")
    assert main(["--host", "0.0.0.0"]) == 2


@pytest.mark.parametrize("value", ["0", "true", ""])
def test_only_exactly_1_opts_in(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ALLOW_ANY_HOST_ENV, value)
    with pytest.raises(ValueError):
        check_loopback("0.0.0.0")


def test_opt_in_allows_any_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ANY_HOST_ENV, "1")
    check_loopback("0.0.0.0")
