from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router_process import TSX, RouterProcess


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterProcess]:
    if not TSX.exists():
        pytest.skip("node_modules/.bin/tsx is missing: run npm ci at the repository root")
    proc = RouterProcess(tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
