"""The committed descriptor matches proto/prefix_router/ingest/v1/ingest.proto."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prefix_router_vllm import wire
from prefix_router_vllm._generated import ingest_v1_descriptor as generated

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT.parent / "proto" / generated.PROTO_FILE


def test_descriptor_is_generated_from_the_current_proto() -> None:
    assert hashlib.sha256(PROTO.read_bytes()).hexdigest() == generated.PROTO_SHA256, "run python3 vllm-patch/scripts/gen_ingest_descriptor.py"


@pytest.mark.skipif(shutil.which("protoc") is None, reason="protoc is not installed")
def test_regenerating_changes_nothing() -> None:
    spec = importlib.util.spec_from_file_location("gen_ingest_descriptor", ROOT / "scripts" / "gen_ingest_descriptor.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.render(gen.build_descriptor_set(), gen.proto_sha256()) == gen.OUT.read_text()


def test_field_numbers_the_router_reads() -> None:
    fields = {f.name: f.number for f in wire.EventBatch.DESCRIPTOR.fields}
    assert fields == {"worker_id": 1, "model": 2, "lora": 3, "epoch": 4, "seq": 5, "block_size": 6, "events": 7, "sent_at_ms": 8}
    assert {f.name: f.number for f in wire.ResyncPage.DESCRIPTOR.fields} == {"worker_id": 1, "model": 2, "epoch": 3, "seq": 4, "block_size": 5, "keys": 6, "last": 7}
    assert (wire.STATUS_APPLIED, wire.STATUS_DUPLICATE, wire.STATUS_RESYNC_REQUIRED) == (0, 1, 2)
    assert wire.PUSH_METHOD == "/prefix_router.ingest.v1.KvIngest/Push"


def test_pure_python_protobuf_runtime_works_too() -> None:
    code = "from prefix_router_vllm import wire; b = wire.EventBatch(seq=7); assert wire.EventBatch.FromString(b.SerializeToString()).seq == 7"
    env = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
