"""The one YAML reader of imbal: safe, and a key repeated in one mapping is an error.

PyYAML keeps the last of two equal keys without a word, so ``loss: ce`` followed later by
``loss: ce+mcc`` would train ``ce+mcc``. Every YAML imbal reads (train configs, study files,
inline data-set mappings, run folders' ``config.yaml``) goes through :func:`load_yaml`.
"""

from __future__ import annotations

from typing import Any

import yaml

from imbal.errors import ConfigError

_MERGE = "tag:yaml.org,2002:merge"


class _RepeatedKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, second: int) -> None:
        lines = f"line {first}" if first == second else f"lines {first} and {second}"
        super().__init__(f"repeats the key {key!r} ({lines})")
        self.text = str(self.args[0])


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<: *anchor` entries may be overridden: YAML's own rule
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _RepeatedKey(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the base constructor names that error
                continue
        return super().construct_mapping(node, deep)


def load_yaml(text: str, where: str) -> Any:
    """``text`` parsed like ``yaml.safe_load``; a repeated key is a :class:`ConfigError` naming ``where``.

    Invalid YAML still raises ``yaml.YAMLError``, which each caller words for its context.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except _RepeatedKey as exc:
        raise ConfigError(f"{where} {exc.text}; YAML would keep only the last, so remove one") from None
