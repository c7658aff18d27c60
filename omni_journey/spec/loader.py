"""Read marketer YAML (YAML 1.2, ruamel.yaml) keeping where every key and value stands.

:func:`parse_yaml` turns text into a :class:`Document`: plain Python data (dicts,
lists, str, int, float, bool, None) plus the line and column of every key and value,
so any later problem can point at ``file:line:col``. It refuses what plain
``yaml.safe_load`` gets silently wrong:

* duplicate keys (``duplicate-key``; the first value is kept),
* unquoted values that YAML 1.1 tools read differently (``yaml-1.1-trap``):
  ``9:30`` (the number 570 there), ``yes``/``no``/``on``/``off``/``y``/``n`` in any
  case (booleans there), ``010`` (octal 8 there),
* and reports broken YAML as ``yaml-syntax`` at the place the parser stopped.

Pure: :func:`parse_yaml` takes text; only :func:`load_yaml` reads a file.

Speed: the nodes come from ruamel.yaml's C parser (libyaml) when it is installed and
the text is small enough to nest safely, with the same marks, tags and values as the
pure-Python round-trip parser, about seven times faster (every command reads the whole
project). Anything the C parser refuses is parsed again by the pure parser, whose error
is the one reported; a test checks that both give the same document wherever the C
parser accepts the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.document import Document, Span
from omni_journey.spec.naming import YamlPath
from omni_journey.spec.yaml_problems import Finding, finding_diagnostic, syntax_diagnostic

__all__ = ["Document", "Loaded", "Span", "load_yaml", "parse_yaml"]

_TAG = "tag:yaml.org,2002:"
_BOOL_TRAP = re.compile(r"(?i)y|yes|n|no|on|off")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_MAX_NODES = 100_000  # alias bombs ("billion laughs") stop here
# The C parser's composer recurses in C, where no recursion limit stops it: text with
# more flow brackets than this is composed by the pure parser, which stops at Python's
# limit and is reported as too deeply nested. (Block nesting needs a line per level,
# indented one more each time: the input size limits keep it shallow.)
_C_MAX_BRACKETS = 1_000


@dataclass(frozen=True)
class Loaded:
    """What :func:`parse_yaml` found: the document (``None`` if it is not YAML at all)
    and the problems already visible at the YAML level."""

    document: Document | None
    diagnostics: list[Diagnostic]


def _span(node: Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag))


class _Builder:
    """Walks the composed node graph into plain data, recording spans and findings."""

    def __init__(self, text: str, yaml: YAML, *, fast: bool = False) -> None:
        self.text = text
        self.fast = fast
        self.constructor = yaml.constructor
        self.values: dict[YamlPath, Span] = {}
        self.keys: dict[YamlPath, Span] = {}
        self.findings: list[Finding] = []
        self.budget = _MAX_NODES
        self.active: set[int] = set()

    def build(self, node: Node, path: YamlPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(node)
        self.values.setdefault(path, _span(node))
        if id(node) in self.active:
            raise _Recursive(node)
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                self._check_tag(node, path, (_TAG + "seq", _TAG + "set", _TAG + "omap"))
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, ScalarNode):
                return self._scalar(node, path)
            raise _ComplexKey(node)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: YamlPath) -> dict[Any, Any]:
        self._check_tag(node, path, (_TAG + "map", _TAG + "set", _TAG + "omap"))
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if _tag(key_node) == _TAG + "merge":
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key in first_line:
                self.findings.append(
                    Finding("duplicate-key", path, _span(key_node), key, first_line[key])
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.keys[(*path, key)] = _span(key_node)
            result[key] = self.build(value_node, (*path, key))
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.findings.append(Finding("yaml-syntax", path, _span(merge), "<<"))
                    continue
                for key_node, value_node in source.value:
                    key = self._key(key_node, path)
                    if key not in result:
                        self.keys[(*path, key)] = _span(key_node)
                        result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, node: Node, path: YamlPath) -> Any:
        if not isinstance(node, ScalarNode):
            raise _ComplexKey(node)
        return self._scalar(node, path)

    def _check_tag(self, node: Node, path: YamlPath, allowed: tuple[str, ...]) -> None:
        if _tag(node) not in allowed:
            self.findings.append(Finding("yaml-syntax", path, _span(node), _tag(node)))

    def _explicitly_tagged(self, node: Node) -> bool:
        index = node.start_mark.index
        return 0 <= index < len(self.text) and self.text[index] == "!"

    def _scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        text: str = node.value
        if node.style == ">":  # the round-trip parser marks each fold with a "\a"
            text = text.replace("\a", "")
        if self.fast and not text and not node.style:
            raise _Unsure(node)  # an empty value: the two parsers place it differently
        tag = _tag(node)
        # a plain (unquoted) scalar: style None from the pure parser, "" from the C one
        if not node.style and not self._explicitly_tagged(node):
            trap = _trap(text)
            if trap is not None:
                self.findings.append(Finding("yaml-1.1-trap", path, _span(node), text, trap))
        if tag in (_TAG + "str", _TAG + "timestamp", _TAG + "binary"):
            return text
        if tag == _TAG + "null":
            return None
        if tag in (_TAG + "bool", _TAG + "int", _TAG + "float"):
            value = self.constructor.construct_object(node, deep=True)
            if tag == _TAG + "bool":
                return bool(value)
            return int(value) if tag == _TAG + "int" else float(value)
        self.findings.append(Finding("yaml-syntax", path, _span(node), tag))
        return text


def _trap(text: str) -> str | None:
    """Which YAML 1.1 reading an unquoted scalar falls into, if any."""
    if _BOOL_TRAP.fullmatch(text):
        return "bool"
    if _SEXAGESIMAL.fullmatch(text):
        return "sexagesimal"
    if _LEADING_ZERO.fullmatch(text):
        return "octal"
    return None


class _Stop(Exception):
    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node


class _Unsure(Exception):
    """The C parser's marks for this node differ from the pure parser's: parse again."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node


class _TooLarge(_Stop):
    pass


class _Recursive(_Stop):
    pass


class _ComplexKey(_Stop):
    pass


def _too_deep(path: str, lines: tuple[str, ...]) -> Diagnostic:
    """``yaml-syntax`` on the line that opens the most lists and mappings."""
    counts = [line.count("[") + line.count("{") for line in lines]
    line = counts.index(max(counts)) + 1 if counts else 1
    doc = Document(path=path, lines=lines, data=None)
    text = lines[line - 1] if lines else ""
    return doc.at_span(
        Span(line, 1, line, max(len(text.rstrip()) + 1, 2)),
        "yaml-syntax",
        "the file nests lists and mappings too deeply",
        expected="a few levels of nesting",
        hint="write nested values out as indented blocks, a few levels deep",
    )


def parse_yaml(text: str, path: str, noun: str = "file") -> Loaded:
    """Parse YAML 1.2 ``text`` shown as ``path``; ``noun`` names the whole document in
    messages (``journey``, ``segment``)."""
    lines = tuple(text.splitlines())
    fast = _compose_fast(text)
    if fast is not None:
        try:
            return _build(text, path, noun, lines, *fast, fast=True)
        except _Unsure:
            pass
    yaml = YAML(typ="rt")
    try:
        root = yaml.compose(text)
    except YAMLError as error:
        return Loaded(None, [syntax_diagnostic(path, lines, error)])
    except RecursionError:  # the parser recurses per level: [[[[... a few hundred deep
        return Loaded(None, [_too_deep(path, lines)])
    return _build(text, path, noun, lines, yaml, root)


def _build(
    text: str,
    path: str,
    noun: str,
    lines: tuple[str, ...],
    yaml: YAML,
    root: Node | None,
    *,
    fast: bool = False,
) -> Loaded:
    if root is None:
        return Loaded(Document(path=path, lines=lines, data=None), [])
    builder = _Builder(text, yaml, fast=fast)
    try:
        data = builder.build(root, ())
    except RecursionError:
        return Loaded(None, [_too_deep(path, lines)])
    except _Stop as stop:
        doc = Document(path=path, lines=lines, data=None)
        message = {
            _TooLarge: "the file expands to too many values (anchors and aliases)",
            _Recursive: "an alias refers to the mapping or list it is in",
            _ComplexKey: "a key must be a plain name, not a list or a mapping",
        }[type(stop)]
        return Loaded(
            None,
            [
                doc.at_span(
                    _span(stop.node),
                    "yaml-syntax",
                    message,
                    expected="plain keys and values",
                    hint="write the values out instead of using anchors (&) and aliases (*)"
                    if not isinstance(stop, _ComplexKey)
                    else "use a plain word as the key",
                )
            ],
        )
    doc = Document(
        path=path, lines=lines, data=data, value_spans=builder.values, key_spans=builder.keys
    )
    return Loaded(doc, [finding_diagnostic(doc, noun, f) for f in builder.findings])


def _compose_fast(text: str) -> tuple[YAML, Node | None] | None:
    """The nodes from the C parser, or ``None`` when the pure parser must do it (no C
    parser, text it would mark differently or nest too deeply, or text it refuses)."""
    if (
        not text.endswith("\n")  # the C parser ends the last line itself: other end marks
        or "\t" in text  # the two parsers disagree on where a tab is allowed
        or text.count("[") + text.count("{") > _C_MAX_BRACKETS
    ):
        return None
    yaml = YAML(typ="safe", pure=False)
    if yaml.Parser.__name__ != "CParser":  # ruamel.yaml.clib missing
        return None
    try:
        return yaml, yaml.compose(text)
    except YAMLError:
        return None


def load_yaml(file: Path, path: str | None = None, noun: str = "file") -> Loaded:
    """Read and parse ``file``; ``path`` is how messages show it (default: as given)."""
    shown = path if path is not None else file.as_posix()
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        doc = Document(path=shown, lines=(), data=None)
        return Loaded(
            None,
            [
                doc.at_span(
                    None,
                    "yaml-syntax",
                    f"the file is not UTF-8 text (byte {error.start + 1})",
                    expected="a UTF-8 text file",
                    hint="save the file as UTF-8 in your editor",
                )
            ],
        )
    return parse_yaml(text, shown, noun)
