"""Shared fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbi_taskflow.client.auth import clear_token_caches


@pytest.fixture
def cold_token_cache(clean_env: None) -> Iterator[None]:
    """Start and end the test with no cached token, so token-request counts belong to the test alone."""
    clear_token_caches()
    yield
    clear_token_caches()
