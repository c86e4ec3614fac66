"""Tokenizers built from the rank files bundled in the package: no network, no tiktoken cache.

``tiktoken.get_encoding`` downloads its rank files (and fails offline), so budgetctl builds each
``tiktoken.Encoding`` itself from ``data/<name>.tiktoken``, after checking the file's sha256 against
the hash tiktoken hard-codes for it. The split pattern and special tokens below are copied from
``tiktoken_ext.openai_public``; a test compares them with the installed tiktoken, so an upgrade that
changes them cannot silently change counts. Which encoding a model uses is tiktoken's own model
table's decision; unknown and non-OpenAI models are counted with o200k_base as an estimate.

This module imports tiktoken: import it only on paths that count tokens.
"""

from __future__ import annotations

import binascii
import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.model import encoding_name_for_model

from budgetctl.costing.names import name_candidates
from budgetctl.errors import StateError, UsageError

DATA_DIR = Path(__file__).with_name("data")
FALLBACK_ENCODING = "o200k_base"

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

R50K_PAT_STR = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

O200K_SPECIAL_TOKENS = {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}
O200K_HARMONY_SPECIAL_TOKENS = {
    **O200K_SPECIAL_TOKENS,
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|reserved_200000|>": 200000,
    "<|reserved_200001|>": 200001,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|reserved_200004|>": 200004,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|reserved_200009|>": 200009,
    "<|reserved_200010|>": 200010,
    "<|reserved_200011|>": 200011,
    "<|call|>": 200012,
} | {f"<|reserved_{i}|>": i for i in range(200013, 201088)}


@dataclass(frozen=True)
class RankFile:
    """A bundled ``.tiktoken`` file (``base64-token rank`` a line), named as tiktoken names it."""

    name: str
    sha256: str  # the expected_hash tiktoken_ext.openai_public gives for this file
    # Ranks are 0, 1, 2, ... in line order (a test checks every bundled file), so the rank of a
    # line is its index and need not be parsed. p50k_base skips 50256 (<|endoftext|>).
    sequential: bool


@dataclass(frozen=True)
class EncodingSpec:
    """What ``tiktoken.Encoding`` needs for one encoding, and the bundled file it reads."""

    name: str
    ranks: RankFile
    pat_str: str
    special_tokens: Mapping[str, int]
    explicit_n_vocab: int | None = None


O200K_FILE = RankFile(
    "o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", True
)
CL100K_FILE = RankFile(
    "cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", True
)
P50K_FILE = RankFile(
    "p50k_base.tiktoken", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069", False
)
R50K_FILE = RankFile(
    "r50k_base.tiktoken", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", True
)
RANK_FILES = (O200K_FILE, CL100K_FILE, P50K_FILE, R50K_FILE)

SPECS: dict[str, EncodingSpec] = {
    spec.name: spec
    for spec in (
        EncodingSpec("o200k_base", O200K_FILE, O200K_PAT_STR, O200K_SPECIAL_TOKENS),
        EncodingSpec("o200k_harmony", O200K_FILE, O200K_PAT_STR, O200K_HARMONY_SPECIAL_TOKENS),
        EncodingSpec(
            "cl100k_base",
            CL100K_FILE,
            CL100K_PAT_STR,
            {
                ENDOFTEXT: 100257,
                FIM_PREFIX: 100258,
                FIM_MIDDLE: 100259,
                FIM_SUFFIX: 100260,
                ENDOFPROMPT: 100276,
            },
        ),
        EncodingSpec("p50k_base", P50K_FILE, R50K_PAT_STR, {ENDOFTEXT: 50256}, 50281),
        EncodingSpec(
            "p50k_edit",
            P50K_FILE,
            R50K_PAT_STR,
            {ENDOFTEXT: 50256, FIM_PREFIX: 50281, FIM_MIDDLE: 50282, FIM_SUFFIX: 50283},
        ),
        EncodingSpec("r50k_base", R50K_FILE, R50K_PAT_STR, {ENDOFTEXT: 50256}, 50257),
    )
}

_DAMAGED_HINT = "reinstall budgetctl (pip install --force-reinstall budgetctl)"


def load_ranks(rank_file: RankFile, data_dir: Path = DATA_DIR) -> dict[bytes, int]:
    """The mergeable ranks in ``data_dir / rank_file.name``, after checking its sha256.

    A missing, damaged or altered file is a :class:`StateError` naming it. Parsed in bulk (one
    split, ``binascii.a2b_base64``, no per-line int() where ranks are sequential), which is much
    faster than tiktoken's line-by-line loader.
    """
    path = data_dir / rank_file.name
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = f"cannot read the tokenizer file ({error.strerror})"
        raise StateError(path, reason, _DAMAGED_HINT) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != rank_file.sha256:
        raise StateError(
            path,
            f"the tokenizer file is damaged: its sha256 is {actual}, expected {rank_file.sha256}",
            _DAMAGED_HINT,
        )
    fields = data.split()
    tokens = fields[0::2]
    ranks: Iterable[int] = range(len(tokens)) if rank_file.sequential else map(int, fields[1::2])
    return dict(zip(map(binascii.a2b_base64, tokens), ranks, strict=True))


def spec_for(name: str) -> EncodingSpec:
    """The spec of a bundled encoding; an unknown name is a :class:`UsageError`."""
    try:
        return SPECS[name]
    except KeyError:
        known = ", ".join(sorted(SPECS))
        raise UsageError(f"unknown encoding {name!r}; budgetctl bundles {known}") from None


def build_encoding(name: str, data_dir: Path = DATA_DIR) -> tiktoken.Encoding:
    """A new ``tiktoken.Encoding`` for ``name`` from the rank file in ``data_dir`` (uncached)."""
    spec = spec_for(name)
    return tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=load_ranks(spec.ranks, data_dir),
        special_tokens=dict(spec.special_tokens),
        explicit_n_vocab=spec.explicit_n_vocab,
    )


_encodings: dict[str, tiktoken.Encoding] = {}
_encodings_lock = threading.Lock()


def get_encoding(name: str) -> tiktoken.Encoding:
    """The bundled encoding ``name``, built once per process (thread-safe)."""
    encoding = _encodings.get(name)
    if encoding is None:
        with _encodings_lock:
            encoding = _encodings.get(name)
            if encoding is None:
                encoding = _encodings[name] = build_encoding(name)
    return encoding


def encoding_name_for(model: str) -> tuple[str, bool]:
    """The encoding tiktoken's model table gives ``model``, and whether that is an estimate.

    The name is tried as given, then without provider prefixes (``azure/gpt-4o`` -> ``gpt-4o``).
    A model tiktoken does not know, or whose encoding is not bundled, gets o200k_base, estimated.
    """
    for candidate in name_candidates(model):
        try:
            name = encoding_name_for_model(candidate)
        except KeyError:
            continue
        if name in SPECS:
            return name, False
        break
    return FALLBACK_ENCODING, True


def encoding_for_model(model: str) -> tuple[tiktoken.Encoding, bool]:
    """The encoding to count ``model``'s tokens with, and whether the count is an estimate."""
    name, estimated = encoding_name_for(model)
    return get_encoding(name), estimated
