"""A message folder on disk: which files it has, for which locale, and its shared content.

``templates/<message>/`` holds ``message.yaml`` (the shared content) and optional
channel variants ``email.html``, ``email.txt``, ``sms.txt``, ``push.yaml`` and
``whatsapp.yaml``. Any of them may have locale versions: ``message.de.yaml``,
``email.de-AT.html``. A customer's locale ``de-AT`` looks for ``de-AT``, then ``de``,
then the file without a locale. Locale content files are merged key by key over
``message.yaml`` (``de`` over the default, ``de-AT`` over ``de``), so a translation
only needs the keys it changes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.loader import Document, load_yaml
from omni_journey.spec.naming import YamlPath

__all__ = [
    "MESSAGE_KEY",
    "VARIANT_FILES",
    "Content",
    "MessageFolder",
    "load_content",
    "locale_candidates",
    "normalize_locale",
]

# what each file is for: (base name, extension)
VARIANT_FILES: Final[Mapping[str, tuple[str, str]]] = {
    "content": ("message", "yaml"),
    "email": ("email", "html"),
    "email_text": ("email", "txt"),
    "sms": ("sms", "txt"),
    "push": ("push", "yaml"),
    "whatsapp": ("whatsapp", "yaml"),
}
MESSAGE_KEY: Final = re.compile(r"[a-z][a-z0-9_]*")  # a message folder's name
_KNOWN_NAMES: Final = tuple(f"{base}.{ext}" for base, ext in VARIANT_FILES.values())
_LOCALE: Final = r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*"
_FILE: Final = re.compile(rf"(?P<base>[a-z]+)(?:\.(?P<locale>{_LOCALE}))?\.(?P<ext>html|txt|yaml)")


def normalize_locale(value: object) -> str | None:
    """``de_at`` -> ``de-AT``, ``zh_hant_tw`` -> ``zh-Hant-TW``; ``None`` for no locale."""
    if not isinstance(value, str) or not re.fullmatch(_LOCALE, value.strip()):
        return None
    language, *rest = re.split(r"[-_]", value.strip())
    subtags = [
        part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part
        for part in rest
    ]
    return "-".join([language.lower(), *subtags])


def locale_candidates(locale: object) -> list[str]:
    """The locales to try, most specific first: ``de-AT`` -> ``["de-AT", "de"]``."""
    normalized = normalize_locale(locale)
    if normalized is None:
        return []
    parts = normalized.split("-")
    return ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]


@dataclass(frozen=True)
class MessageFolder:
    """The files of one message; ``shown`` is how its paths print (``templates/x``)."""

    key: str
    directory: Path
    shown: str
    files: Mapping[tuple[str, str | None, str], str]  # (base, locale, ext) -> file name
    others: tuple[str, ...] = ()  # files that are not variants

    @classmethod
    def open(cls, templates_dir: Path, key: str, shown_dir: str) -> MessageFolder | None:
        """The folder of ``key``, or ``None`` when there is none; its paths print under
        ``shown_dir``."""
        if not MESSAGE_KEY.fullmatch(key):
            return None
        directory = templates_dir / key
        if not directory.is_dir():
            return None
        files: dict[tuple[str, str | None, str], str] = {}
        others: list[str] = []
        for path in sorted(directory.iterdir()):
            match = _FILE.fullmatch(path.name) if path.is_file() else None
            locale = normalize_locale(match["locale"]) if match and match["locale"] else None
            slot = (match["base"], locale, match["ext"]) if match else None
            if slot and (slot[0], slot[2]) in VARIANT_FILES.values():
                files[slot] = path.name
            elif path.is_file():
                others.append(path.name)
        return cls(key, directory, f"{shown_dir}/{key}", files, tuple(others))

    def find(self, variant: str, locale: str | None) -> str | None:
        """The file name of ``variant`` for ``locale`` (falling back), or ``None``."""
        base, ext = VARIANT_FILES[variant]
        for candidate in [*locale_candidates(locale), None]:
            name = self.files.get((base, candidate, ext))
            if name is not None:
                return name
        return None

    @property
    def locales(self) -> tuple[str, ...]:
        """Every locale some file of this message is written for."""
        return tuple(sorted({loc for (_, loc, _) in self.files if loc is not None}))

    def locale_of(self, name: str) -> str | None:
        """The locale a file of this folder is written for (``None``: the default)."""
        match = _FILE.fullmatch(name)
        return normalize_locale(match["locale"]) if match and match["locale"] else None

    def show(self, name: str) -> str:
        return f"{self.shown}/{name}"

    def misspelt(self) -> list[tuple[str, str]]:
        """(file, what it probably should be called) for files that look like typos."""
        found = []
        for name in self.others:
            stem = _FILE.fullmatch(name)
            plain = f"{stem['base']}.{stem['ext']}" if stem else name
            close = difflib.get_close_matches(plain, _KNOWN_NAMES, n=1, cutoff=0.75)
            if close:
                found.append((name, close[0]))
        return found


@dataclass(frozen=True)
class Content:
    """The shared content for one locale: merged data, and which file each value is from."""

    data: dict[str, Any]
    origins: Mapping[YamlPath, Document]
    documents: tuple[Document, ...]
    locale: str | None = None  # the most specific locale file merged in
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def default(self) -> Document:
        return self.documents[0]

    def origin(self, path: YamlPath) -> Document:
        """The file the value at ``path`` (or its nearest ancestor) comes from."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return self.default


def _merge(
    into: dict[str, Any],
    data: Mapping[str, Any],
    doc: Document,
    origins: dict[YamlPath, Document],
    path: YamlPath = (),
) -> None:
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, doc, origins, here)
        else:
            into[key] = _copy(value)
            for existing in [p for p in origins if p[: len(here)] == here]:
                del origins[existing]
        origins[here] = doc


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def load_content(folder: MessageFolder, locale: str | None) -> Content | None:
    """``message.yaml`` with the locale files for ``locale`` merged over it.

    ``None`` when the folder has no ``message.yaml``; YAML problems are in
    ``diagnostics`` (a file that is not YAML at all is left out of the merge).
    """
    chain: list[tuple[str | None, str | None]] = [
        (None, folder.files.get(("message", None, "yaml")))
    ]
    chain += [
        (loc, folder.files.get(("message", loc, "yaml")))
        for loc in reversed(locale_candidates(locale))
    ]
    if chain[0][1] is None:
        return None
    data: dict[str, Any] = {}
    origins: dict[YamlPath, Document] = {}
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    used: str | None = None
    for index, (locale_of_file, name) in enumerate(chain):
        if name is None:
            continue
        loaded = load_yaml(folder.directory / name, folder.show(name), noun="message")
        diagnostics.extend(loaded.diagnostics)
        doc = loaded.document
        if doc is None:
            if index == 0:  # keep a place for message.yaml: problems point at it
                documents.append(Document(path=folder.show(name), lines=(), data=None))
            continue
        documents.append(doc)
        used = locale_of_file or used
        if isinstance(doc.data, Mapping):
            _merge(data, doc.data, doc, origins)
        elif doc.data is not None:
            diagnostics.append(
                doc.at((), "invalid-value", "the shared content must be a mapping of keys")
            )
    return Content(data, origins, tuple(documents), used, tuple(diagnostics))
