"""Reading user files safely: text that must be UTF-8, YAML with bounded expansion and no duplicate keys.

Every loader of a user file (accelerator configs, design spaces, YAML networks, mixed-precision
maps, SCALE-Sim CSVs) goes through :func:`read_text` and, for YAML, :func:`parse_yaml`, so that a
binary file, a non-UTF-8 file, a YAML alias bomb ("billion laughs"), a recursive alias or a
duplicate key is one :class:`~codesign.errors.CodesignError` naming the file and the problem, raised
in milliseconds, never a traceback or a hang.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from codesign.errors import CodesignError, ConfigError

#: the largest user file read (bytes); configs, spaces and networks are kilobytes
MAX_FILE_BYTES = 64 * 1024 * 1024
#: YAML nodes a document may expand to, counting every use of an alias (a billion-laughs file of
#: 9 levels expands to 10^9; a 1,000-layer network file is about 30,000 nodes)
MAX_YAML_NODES = 1_000_000


def read_text(path: str | Path, *, what: str = "file", error: type[CodesignError] = ConfigError) -> str:
    """The text of a UTF-8 file (a BOM is dropped); ``error`` names the file for an absent, unreadable,
    oversized, binary or non-UTF-8 one."""
    p = Path(path)
    try:
        if p.is_dir():
            raise error(f"{what} {str(path)!r} is a directory, not a file")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise error(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{p.name}: {what} must be at most {MAX_FILE_BYTES:,} bytes, not larger")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise error(f"{p.name}: {what} must be UTF-8 text, not binary (NUL byte at offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{p.name}: {what} must be UTF-8 text, not byte 0x{data[e.start]:02x} at offset {e.start}"
                    ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _loader_class() -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        """SafeLoader that refuses duplicate keys in a mapping and reads ``2:4`` as text: YAML 1.1's
        base-60 numbers (``2:4`` = 124) are gone from YAML 1.2, and here ``n:m`` means a sparsity."""

        yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
            first: [(tag, _NoColon(rx)) if tag in _NUMBER_TAGS else (tag, rx) for tag, rx in entries]
            for first, entries in base.yaml_implicit_resolvers.items()
        }

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    try:
                        first = seen.get(key)
                    except TypeError:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"a mapping key must be a scalar, not {type(key).__name__}",
                            key_node.start_mark) from None
                    if first is not None:
                        raise _Duplicate(key, line, first)
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return Loader


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


class _NoColon:
    """A number resolver's pattern, without YAML 1.1's base-60 forms (``1:30``)."""

    def __init__(self, regexp: Any) -> None:
        self.regexp = regexp

    def match(self, value: str) -> Any:
        return None if ":" in value else self.regexp.match(value)


class _Duplicate(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [c for pair in node.value for c in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded_size(root: Any, name: str, error: type[CodesignError]) -> int:
    """Nodes of the document with every alias expanded, without expanding it (memoized over the
    node graph); refuses a recursive alias and a document larger than :data:`MAX_YAML_NODES`."""
    size: dict[int, int] = {}
    active: set[int] = set()
    # iterative post-order walk: a deep document must not exhaust the Python stack
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            total = 1 + sum(size[id(c)] for c in _children(node))
            active.discard(nid)
            size[nid] = total
            if total > MAX_YAML_NODES:
                raise error(f"{name}: YAML must expand to at most {MAX_YAML_NODES:,} nodes, not more "
                            f"(aliases used as a bomb?)")
            continue
        if nid in size:
            continue
        if nid in active:
            raise error(f"{name}: YAML must not hold a recursive alias (line {node.start_mark.line + 1})")
        active.add(nid)
        stack.append((node, True))
        for c in _children(node):
            if id(c) in active:
                raise error(f"{name}: YAML must not hold a recursive alias (line {c.start_mark.line + 1})")
            if id(c) not in size:
                stack.append((c, False))
    return size.get(id(root), 0)


def parse_yaml(text: str, *, name: str, error: type[CodesignError] = ConfigError) -> Any:
    """Parse one YAML document safely (see the module docstring); ``name`` prefixes errors."""
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, name, error)
        return loader.construct_document(node)
    except _Duplicate as e:
        raise error(f"{name}: duplicate key {e.key!r} at line {e.line} (first at line {e.first}); "
                    f"give each key once") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{name}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise error(f"{name}: YAML is nested too deeply") from None
    except ValueError as e:  # int("9" * 5000): Python's limit on digits
        detail = "a number has too many digits" if "digits" in str(e) else str(e).splitlines()[0]
        raise error(f"{name}: YAML value cannot be read: {detail}") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path, *, what: str = "YAML file", error: type[CodesignError] = ConfigError) -> Any:
    """The parsed content of a YAML file (``None`` for an empty one)."""
    return parse_yaml(read_text(path, what=what, error=error), name=Path(path).name, error=error)
