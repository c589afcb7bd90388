"""Writing bundles back out as YAML or JSON.

Output uses the camelCase names, leaves out fields that hold their default, and
leaves out ids that are the derived ones, so a dumped bundle reads like one a
person wrote and loading it again gives an equal bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from parlant_runtime.bundle.ids import derived_id_pairs
from parlant_runtime.bundle.schema import AgentBundle

__all__ = ["dump_bundle", "dumps_bundle"]


def _bundle_to_data(bundle: AgentBundle) -> dict[str, Any]:
    derived = {id(entity) for entity, value in derived_id_pairs(bundle) if entity.id == value}
    data = bundle.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    _strip_derived_ids(bundle, data, derived)
    return data


def _strip_derived_ids(model: Any, data: Any, derived: set[int]) -> None:
    """Walk the model and its dump side by side, dropping ids that were derived."""
    if isinstance(data, dict):
        if id(model) in derived:
            data.pop("id", None)
        _leading_keys_first(data)
        for key, value in data.items():
            child = _attribute_for(model, key)
            if child is not None:
                _strip_derived_ids(child, value, derived)
    elif isinstance(data, list) and isinstance(model, list):
        for item_model, item_data in zip(model, data, strict=True):
            _strip_derived_ids(item_model, item_data, derived)


_LEADING_KEYS = ("id", "name", "title", "key", "from", "to", "guideline")


def _leading_keys_first(data: dict[str, Any]) -> None:
    """Put the keys that identify an entry first, as people write them."""
    for key in reversed(_LEADING_KEYS):
        if key in data:
            data[key] = data.pop(key)
            data_items = list(data.items())
            data.clear()
            data.update([data_items[-1], *data_items[:-1]])


def _attribute_for(model: Any, alias: str) -> Any:
    fields = getattr(type(model), "model_fields", None)
    if fields is None:
        return None
    for name, info in fields.items():
        if alias in (name, info.alias):
            return getattr(model, name)
    return None


class _BlockStyleDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, the way people write prompts."""


_YAML_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style: str | None = None
    if any(ch in _YAML_LINE_BREAKS or not (ch.isprintable() or ch in "\n\t") for ch in value):
        style = '"'  # escaped, so that readers cannot mistake them for line breaks
    elif "\n" in value:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def dumps_bundle(bundle: AgentBundle, *, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The bundle as YAML or JSON text."""
    data = _bundle_to_data(bundle)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(
        data,
        Dumper=_BlockStyleDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def dump_bundle(bundle: AgentBundle, path: str | Path) -> None:
    """Write the bundle to ``path``: JSON for ``.json``, YAML otherwise."""
    target = Path(path)
    fmt: Literal["yaml", "json"] = "json" if target.suffix.lower() == ".json" else "yaml"
    target.write_text(dumps_bundle(bundle, fmt=fmt), encoding="utf-8")
