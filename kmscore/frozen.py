"""`@frozen`: `@dataclass(frozen=True)` with a cheaper `__init__`.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__`
(its own `__setattr__` refuses): ~110 ns a field here, against ~40 ns for a store into
the instance's `__dict__`. A 4 KiB PUT builds ~20 models with ~200 fields between them,
so that is ~14 us of a ~400 us request (docs/PERFORMANCE.md, session 9).

`frozen` builds the class with `dataclass(frozen=True)` and then replaces only
`__init__` by one that writes `self.__dict__` directly, in field order (a
default_factory called, as the dataclass's `__init__` calls it, for each instance that
does not pass its field), and calls `__post_init__` if the class has one. Everything
else is the dataclass's own: fields(), replace(), equality, hashing, repr, and
FrozenInstanceError on assignment. A class the fast `__init__` cannot express (slots,
keyword-only or init=False fields, InitVar or ClassVar pseudo-fields) keeps the
generated one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def frozen(cls: type[T]) -> type[T]:
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    if "__slots__" in cls.__dict__ or not _plain(cls, fields):
        return cls
    init = _init(fields, hasattr(cls, "__post_init__"))
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls


def _plain(cls: type, fields: tuple[dataclasses.Field, ...]) -> bool:
    if len(cls.__dataclass_fields__) != len(fields):  # type: ignore[attr-defined]
        return False  # InitVar or ClassVar pseudo-fields
    return all(f.init and not f.kw_only for f in fields)


def _init(fields: tuple[dataclasses.Field, ...], post_init: bool) -> Any:
    namespace: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    params, lines = [], []
    for f in fields:
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_factory_{f.name}() if {f.name} is _MISSING else {f.name}"
        else:
            params.append(f.name)
        lines.append(f"    __d[{f.name!r}] = {value}")
    head = [f"def __init__(__self, {', '.join(params)}):", "    __d = __self.__dict__"]
    tail = ["    __self.__post_init__()"] if post_init else []
    exec("\n".join(head + lines + tail), namespace)  # noqa: S102 - built from field names
    return namespace["__init__"]
