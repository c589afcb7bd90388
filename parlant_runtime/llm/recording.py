"""Record a model's HTTP exchanges once, replay them in CI: no network, same bytes.

Built on vcrpy (the ``record`` extra: ``pip install 'parlant-runtime[record]'``), which
patches the HTTP client both official SDKs use (httpx), so any adapter on them records
with nothing of its own. A cassette is a YAML file of request/response pairs:

- ``record``: every request goes to the provider, and the cassette is written afresh;
- ``replay``: every request must match a recorded one (method, URL and body, byte for
  byte) and gets its recorded response; one that does not match fails at once and
  never reaches the network.

API keys never reach a cassette: the ``authorization``, ``x-api-key``,
``api-key`` and organisation headers are dropped when recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from parlant_runtime.llm.port import LanguageModelError

__all__ = ["SECRET_HEADERS", "RecordMode", "cassette_for", "recorded"]

RecordMode = Literal["record", "replay"]

SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
    "anthropic-organization",
    "cookie",
    "set-cookie",
)
"""Headers that are never written to a cassette."""


def cassette_for(test_file: str | Path) -> Path:
    """Where the recording of a conversation test file lives: ``x.conversation.yaml`` ->
    ``x.cassette.yaml`` next to it."""
    path = Path(test_file)
    name = path.name.removesuffix(".yaml").removesuffix(".conversation")
    return path.with_name(f"{name}.cassette.yaml")


@contextmanager
def recorded(path: str | Path, mode: RecordMode) -> Iterator[None]:
    """Record to, or replay from, the cassette at ``path`` for the ``with`` block.

    Raises:
        LanguageModelError: vcrpy is not installed, or there is nothing to replay.
    """
    try:
        import vcr  # noqa: PLC0415 (an optional extra)
    except ImportError:
        raise LanguageModelError(
            "recording and replaying model calls needs vcrpy: pip install 'parlant-runtime[record]'"
        ) from None
    cassette = Path(path)
    if mode == "replay" and not cassette.is_file():
        raise LanguageModelError(
            f"no recording at {cassette}: run once against the model with --record"
        )
    if mode == "record":
        cassette.unlink(missing_ok=True)
        cassette.parent.mkdir(parents=True, exist_ok=True)
    recorder = vcr.VCR(
        record_mode="all" if mode == "record" else "none",
        match_on=("method", "scheme", "host", "port", "path", "query", "body"),
        filter_headers=list(SECRET_HEADERS),
        decode_compressed_response=True,
    )
    with recorder.use_cassette(str(cassette)):
        yield
