"""Message classes of prefix_router.ingest.v1, built at runtime from the committed descriptor set
(_generated/ingest_v1_descriptor.py) — no *_pb2.py, so the plugin runs on the protobuf runtime
vLLM brings (4.21 … 6.x) whatever protoc produced the descriptor. See README.md "Wire format".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ._generated.ingest_v1_descriptor import DESCRIPTOR_SET
from .ops import Op

PACKAGE = "prefix_router.ingest.v1"
SERVICE = f"{PACKAGE}.KvIngest"
PUSH_METHOD = f"/{SERVICE}/Push"
RESYNC_METHOD = f"/{SERVICE}/Resync"


def _message_classes() -> dict[str, Any]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET)
    # A private pool: another copy of this .proto in the default pool cannot clash with ours.
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.AddSerializedFile(f.SerializeToString())
    # GetMessageClass exists from protobuf 4.22 on; GetPrototype is gone in 5.x/6.x.
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:
        get_class = message_factory.MessageFactory(pool).GetPrototype
    names = ["EventBatch", "Event", "BlocksStored", "BlocksRemoved", "AllBlocksCleared", "PushReply", "ResyncPage", "ResyncReply"]
    return {n: get_class(pool.FindMessageTypeByName(f"{PACKAGE}.{n}")) for n in names}


_CLASSES = _message_classes()
EventBatch: Any = _CLASSES["EventBatch"]
Event: Any = _CLASSES["Event"]
BlocksStored: Any = _CLASSES["BlocksStored"]
BlocksRemoved: Any = _CLASSES["BlocksRemoved"]
AllBlocksCleared: Any = _CLASSES["AllBlocksCleared"]
PushReply: Any = _CLASSES["PushReply"]
ResyncPage: Any = _CLASSES["ResyncPage"]
ResyncReply: Any = _CLASSES["ResyncReply"]

# PushReply.Status values, read through the descriptor API that every runtime shares.
_STATUS = PushReply.DESCRIPTOR.enum_types_by_name["Status"].values_by_name
STATUS_APPLIED: int = _STATUS["APPLIED"].number
STATUS_DUPLICATE: int = _STATUS["DUPLICATE"].number
STATUS_RESYNC_REQUIRED: int = _STATUS["RESYNC_REQUIRED"].number


@dataclass(frozen=True)
class Identity:
    """The header fields every message of one publisher carries."""

    worker_id: str
    model: str
    epoch: str
    block_size: int


def event_batch(ident: Identity, seq: int, ops: Sequence[Op], sent_at_ms: int) -> Any:
    """An EventBatch; no ops makes a heartbeat (or the opening batch)."""
    events = []
    for op in ops:
        if op.kind == "stored":
            events.append(Event(stored=BlocksStored(keys=op.keys, parent=op.parent)))
        elif op.kind == "removed":
            events.append(Event(removed=BlocksRemoved(keys=op.keys)))
        else:
            events.append(Event(cleared=AllBlocksCleared()))
    return EventBatch(
        worker_id=ident.worker_id,
        model=ident.model,
        lora="",  # keys carry their adapter in the chain root; one batch may mix adapters
        epoch=ident.epoch,
        seq=seq,
        block_size=ident.block_size,
        events=events,
        sent_at_ms=sent_at_ms,
    )


def resync_pages(ident: Identity, seq: int, keys: Sequence[bytes], page_keys: int) -> Iterator[Any]:
    """The pages of one Resync: `page_keys` keys each, at least one page, `last` on the final."""
    pages = max(1, -(-len(keys) // page_keys))
    for p in range(pages):
        yield ResyncPage(
            worker_id=ident.worker_id,
            model=ident.model,
            epoch=ident.epoch,
            seq=seq,
            block_size=ident.block_size,
            keys=b"".join(keys[p * page_keys : (p + 1) * page_keys]),
            last=p == pages - 1,
        )
