"""kmscore.frozen: a frozen dataclass with a cheaper __init__ behaves like one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

import pytest

from kmscore.frozen import frozen


@frozen
class Point:
    x: int
    y: str = "d"
    z: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Reference:
    x: int
    y: str = "d"
    z: tuple[int, ...] = ()


def generated(cls: type) -> bool:
    """Whether cls has the dataclass's own frozen __init__ (object.__setattr__ per field)."""
    return "__setattr__" in cls.__init__.__code__.co_names


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "q"), {}), ((), {"x": 2, "z": (1,)}), ((3, "a", (4,)), {})],
)
def test_built_like_the_frozen_dataclass(args, kwargs):
    p, r = Point(*args, **kwargs), Reference(*args, **kwargs)
    assert dataclasses.astuple(p) == dataclasses.astuple(r)
    assert repr(p).removeprefix("Point") == repr(r).removeprefix("Reference")
    assert p == Point(*args, **kwargs) and hash(p) == hash(Point(*args, **kwargs))


def test_the_init_is_the_fast_one_and_the_rest_the_dataclass_own():
    assert generated(Reference) and not generated(Point)
    assert Point.__init__.__qualname__ == "Point.__init__"
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "z"]
    assert dataclasses.replace(Point(1), y="r") == Point(1, "r")


def test_still_frozen():
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y


@pytest.mark.parametrize(
    ("args", "kwargs"), [((), {}), ((1, "a", (), 4), {}), ((1,), {"w": 2}), ((1,), {"x": 2})]
)
def test_wrong_arguments_raise_type_error(args, kwargs):
    with pytest.raises(TypeError):
        Point(*args, **kwargs)
    with pytest.raises(TypeError):
        Reference(*args, **kwargs)


def test_post_init_runs():
    @frozen
    class Held:
        context: Mapping[str, str]

        def __post_init__(self) -> None:
            object.__setattr__(self, "context", MappingProxyType(dict(self.context)))

    h = Held({"a": "b"})
    assert isinstance(h.context, MappingProxyType) and h.context == {"a": "b"}


def test_a_default_factory_is_called_per_instance_that_does_not_pass_the_field():
    calls = []

    def fresh() -> list[int]:
        calls.append(1)
        return []

    @frozen
    class Factory:
        name: str
        items: list[int] = dataclasses.field(default_factory=fresh)

    a, b = Factory("a"), Factory("b")
    assert a.items == [] and a.items is not b.items and len(calls) == 2
    assert Factory("c", [1]).items == [1] and len(calls) == 2
    assert not generated(Factory)


def test_classes_it_cannot_express_keep_the_generated_init():
    @frozen
    class KwOnly:
        a: int = dataclasses.field(kw_only=True)

    @frozen
    class WithClassVar:
        a: int
        limit: ClassVar[int] = 3

    @frozen
    class WithInitVar:
        a: int
        scale: dataclasses.InitVar[int] = 1

        def __post_init__(self, scale: int) -> None:
            object.__setattr__(self, "a", self.a * scale)

    for cls in (KwOnly, WithClassVar, WithInitVar):
        assert generated(cls)
    assert KwOnly(a=1).a == 1 and WithClassVar(2).a == 2 and WithInitVar(2, 3).a == 6
