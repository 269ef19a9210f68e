"""Builds data/tiktoken-reference.json: reference token ids from OpenAI's Python tiktoken for
tiktoken BPE files, which src/tokenize/tiktoken-reference.test.ts compares with the router's
tokenizer (npm tiktoken behind our splitter, chunker and caches).

The BPE ranks are cl100k_base and o200k_base as the npm `tiktoken` package ships them
(node_modules/tiktoken/encoders/*.json, a compact "! <first rank> <base64 token> ..." line), written
out in the standard *.tiktoken format ("<base64 token> <rank>" per line): the test writes the same
file into a model folder, and the file's SHA-256 is recorded so both sides provably use one file.

    scripts/python-venv.sh python/requirements-tiktoken.txt
    .venv/bin/python scripts/tiktoken-reference/build_reference.py
"""
import base64
import hashlib
import json
import pathlib
import platform
import random

import tiktoken

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "data" / "tiktoken-reference.json"
SHAREGPT = ROOT / "data" / "workloads" / "sharegpt_v3_firstturn_500.json"

# Added tokens beyond each encoding's own: ChatML markers (cl100k) and harmony's (o200k).
EXTRA_SPECIALS = {
    "cl100k_base": {"<|im_start|>": 100264, "<|im_end|>": 100265},
    "o200k_base": {"<|start|>": 200006, "<|end|>": 200007, "<|message|>": 200008},
}


def tiktoken_file(name: str) -> str:
    """The npm package's compact ranks as a standard .tiktoken file (the test builds the same)."""
    packed = json.loads((ROOT / "node_modules" / "tiktoken" / "encoders" / f"{name}.json").read_text())
    lines = []
    for row in packed["bpe_ranks"].split("\n"):
        if not row:
            continue
        marker, first, *tokens = row.split(" ")
        assert marker == "!", f"unexpected ranks line in {name}"
        lines.extend(f"{tok} {int(first) + i}" for i, tok in enumerate(tokens))
    return "\n".join(lines) + "\n"


def texts(specials: list[str]) -> list[tuple[str, str]]:
    prompts = [c["conversations"][0]["value"] for c in json.loads(SHAREGPT.read_text())]
    rng = random.Random(12)
    snippets = [
        " ", "  ", "\n", "\n\n", "\r\n", "\t", " \n ", "Hello", " world", "'s", "'LL", "don't", "123", "4567", "1234567",
        "3.14", "é", "e\u0301", "東京", "你好，", "한국어", "مرحبا", "👨‍👩‍👧", "👋🏽", "\u0085", "\ufeff", "\u00a0",
        "def f(x):\n\treturn x", '{"a": [1, 2]}', "<", "<|", "|>", "path/to/file", "ALL CAPS Words", "iPhone's",
    ]
    out = [("empty", ""), ("hello", "Hello world"), ("specials-only", "".join(specials))]
    for i in range(12):
        parts = [rng.choice(specials) if rng.random() < 0.15 else rng.choice(snippets) for _ in range(rng.randrange(5, 60))]
        out.append((f"edge-{i}", "".join(parts)))
    for i in range(8):
        out.append((f"sharegpt-{i}", prompts[i * 37]))
    # Long texts with added tokens between them: chunked by the router, whole here.
    for i in range(2):
        body = "\n\n".join(prompts[100 + i * 40 : 100 + i * 40 + 12])
        out.append((f"long-{i}", f"{specials[-2]}system\n{body}{specials[-1]}\n{specials[-2]}user\nSummarize.{specials[-1]}"))
    out.append(("long-no-cuts", "x" * 9000 + " y" * 10))
    return out


def main() -> None:
    encodings = {}
    cases = []
    for name, extra in EXTRA_SPECIALS.items():
        packed = json.loads((ROOT / "node_modules" / "tiktoken" / "encoders" / f"{name}.json").read_text())
        ranks_text = tiktoken_file(name)
        ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split(" ") for line in ranks_text.splitlines())}
        specials = {**packed["special_tokens"], **extra}
        enc = tiktoken.Encoding(name=f"{name}-reference", pat_str=packed["pat_str"], mergeable_ranks=ranks, special_tokens=specials)
        encodings[name] = {
            "ranks": f"npm tiktoken {json.loads((ROOT / 'node_modules' / 'tiktoken' / 'package.json').read_text())['version']} encoders/{name}.json",
            "ranksFileSha256": hashlib.sha256(ranks_text.encode()).hexdigest(),
            "pattern": packed["pat_str"],
            "specialTokens": specials,
        }
        for case_id, text in texts(list(specials)):
            cases.append({"id": f"{name}:{case_id}", "encoding": name, "text": text, "ids": enc.encode(text, allowed_special="all")})
    head = {
        "about": [
            "Reference token ids for src/tokenize/tiktoken-reference.test.ts: each text encoded by OpenAI's Python",
            "tiktoken, Encoding(pat_str, mergeable_ranks, special_tokens).encode(text, allowed_special='all').",
            "Regenerate: scripts/python-venv.sh python/requirements-tiktoken.txt && .venv/bin/python scripts/tiktoken-reference/build_reference.py",
        ],
        "generator": {"tiktoken": tiktoken.__version__, "python": platform.python_version()},
        "encodings": encodings,
    }
    # One case per line: the file stays readable and diffs stay small.
    lines = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "cases": [\n'
    lines += ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases) + "\n ]\n}\n"
    OUT.write_text(lines)
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
