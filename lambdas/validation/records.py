"""Record: immutable value objects for the decision path, without the dataclasses module.

Why not @dataclass: `import dataclasses` loads inspect (and with it ast, dis and tokenize), and every @dataclass
compiles its generated methods with exec while its module is imported, 1-2 ms a class. An authorizer's decision path
holds about twenty such records, so together they cost a cold start some 25 ms of CPU, a quarter of it
(`python tests/bench/bench_cold_start.py --breakdown`). A Record costs nothing at import.

A subclass names its fields in `__slots__` (or, when it keeps a `__dict__`, in `_fields`) and assigns them in its
own `__init__` through `set_field`, since ordinary assignment is refused. Record then gives what
@dataclass(frozen=True) gave: equality and hashing over the fields (a record equals only a record of its own class),
a repr naming them, `replace()` for a changed copy, `field_values()`, and no assignment after construction.
"""
from __future__ import annotations

from typing import Any

# object.__setattr__ bypasses Record.__setattr__: the one way an __init__ fills a record's fields.
set_field = object.__setattr__


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_fields" not in cls.__dict__:
            cls._fields = tuple(name for name in cls.__dict__.get("__slots__", ()) if not name.startswith("_"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__}.{name} cannot be assigned: {type(self).__name__} records are "
                             f"immutable; build a changed copy with replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__}.{name} cannot be deleted: {type(self).__name__} records are "
                             f"immutable")

    def field_values(self) -> dict[str, Any]:
        """The fields by name, in declaration order (the values themselves, not copies)."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> Any:
        """A copy with `changes` applied, built (and so checked) by the class's own __init__, whose parameters are
        the field names."""
        unknown = sorted(set(changes) - set(self._fields))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(unknown)}; its fields are "
                            f"{', '.join(self._fields)}")
        return type(self)(**{**self.field_values(), **changes})

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in self._fields))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"
