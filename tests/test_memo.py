"""The bounded content memo: computed once per key, cleared when full, unhashable keys pass."""

from __future__ import annotations

from typing import Any

from cds_service.memo import Memo


def test_get_with_computes_once_per_key_from_the_key() -> None:
    calls: list[str] = []

    def length(text: str) -> int:
        calls.append(text)
        return len(text)

    memo: Memo[str, int] = Memo("test", 2)
    assert memo.get_with("ab", length) == 2
    assert memo.get_with("ab", length) == 2
    assert calls == ["ab"]
    memo.get_with("abc", length)
    memo.get_with("abcd", length)  # full: cleared, then kept
    assert len(memo) == 1
    assert memo.get_with("ab", length) == 2
    assert calls == ["ab", "abc", "abcd", "ab"]


def test_get_with_answers_an_unhashable_key_without_keeping_it() -> None:
    memo: Memo[Any, int] = Memo("test", 4)  # raw JSON may put a list where a key is expected
    assert memo.get_with(["a", "b"], len) == 2
    assert len(memo) == 0
