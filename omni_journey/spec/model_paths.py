"""Which spec model a place in the loaded data is read as, following discriminated
unions (a step's ``type``, a condition's kind) the way pydantic does."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo

from omni_journey.spec.naming import YamlPath, get_at

__all__ = ["allowed_keys", "field_of", "model_at"]


def _unwrap(annotation: Any, value: Any) -> Any:
    """Strip ``Annotated`` and resolve a callable discriminator against ``value``."""
    while get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        discriminator = next((m for m in metadata if isinstance(m, Discriminator)), None)
        if discriminator is not None and callable(discriminator.discriminator):
            tag = discriminator.discriminator(value)
            chosen = None
            for member in get_args(base):
                member_tags = get_args(member)[1:] if get_origin(member) is Annotated else ()
                if any(isinstance(t, Tag) and t.tag == tag for t in member_tags):
                    chosen = member
            return _unwrap(chosen, value) if chosen is not None else None
        annotation = base
    return annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _model_of(annotation: Any, value: Any) -> type[BaseModel] | None:
    for member in _members(_unwrap(annotation, value)):
        member = _unwrap(member, value)
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _inner(annotation: Any, value: Any, part: Any) -> Any:
    """The annotation one step down ``part`` (a list index or a mapping key)."""
    for member in _members(_unwrap(annotation, value)):
        member = _unwrap(member, value)
        origin, args = get_origin(member), get_args(member)
        if origin is tuple and isinstance(part, int) and args:
            return args[0]
        if origin is dict and len(args) == 2:
            return args[1]
    return None


def field_of(model: type[BaseModel], key: Any) -> FieldInfo | None:
    """The field a YAML key sets (by alias), if the model has one."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def model_at(root: type[BaseModel], data: Any, path: YamlPath) -> type[BaseModel] | None:
    """The spec model that the mapping at ``path`` in ``data`` is read as, if any."""
    annotation: Any = root
    value = data
    for part in path:
        model = _model_of(annotation, value)
        if model is not None:
            info = field_of(model, part)
            if info is None:
                return None
            annotation = info.rebuild_annotation()
        else:
            annotation = _inner(annotation, value, part)
            if annotation is None:
                return None
        value = get_at(value, (part,))
    return _model_of(annotation, value)


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts, sorted."""
    return sorted(info.alias or name for name, info in model.model_fields.items())
