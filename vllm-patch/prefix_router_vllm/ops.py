"""Domain form of one ingest event (what the translator produces and a batch carries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OpKind = Literal["stored", "removed", "cleared"]


@dataclass(slots=True)
class Op:
    kind: OpKind
    # Concatenated 8-byte router keys (chain order for "stored"); empty for "cleared".
    keys: bytes = b""
    # "stored" only: the router key before keys[0]; empty when the run starts at block 0.
    parent: bytes = b""

    @property
    def key_count(self) -> int:
        return len(self.keys) // 8
