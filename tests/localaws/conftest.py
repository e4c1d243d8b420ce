"""One embedded AWS for the emulator tests (moto's backends are process-wide anyway)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localaws.server import EmbeddedAws


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    with EmbeddedAws(tmp_path_factory.mktemp("aws")) as aws:
        yield aws
