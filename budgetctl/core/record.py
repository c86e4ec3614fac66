"""Records: ``typing.NamedTuple`` to the type checker, made at a fifth of its cost at run time.

Every value class of the package (a budget, an event, an outcome, a price...) is a named tuple,
and a one-shot command imports about forty of them before it does anything. ``typing.NamedTuple``
costs five times what this does (0.7 M instructions a class against 0.15 M, about 0.1 ms on this
project's machines, more with string annotations): ``collections.namedtuple`` compiles each
class's ``__new__`` from source (``eval``), and typing checks every annotation. :class:`Record`
makes the same tuple subclass without any of that::

    from budgetctl.core.record import Record

    class Hold(Record):
        hold_id: str
        amount: Decimal
        note: str | None = None

        def is_open(self, now: datetime) -> bool: ...

Type checkers see ``typing.NamedTuple`` itself (``Record`` is that name under
``TYPE_CHECKING``), so every use is checked as before. At run time the class is a ``tuple`` with
the same behaviour: positional or keyword construction with the defaults, each field a C-level
item getter, ``_replace``, ``_make``, ``_asdict``, ``_fields``, ``_field_defaults``,
``__match_args__``, namedtuple's ``repr``, tuple equality, hashing, ordering, unpacking and
pickling. ``__new__`` is namedtuple's own one-line function, not compiled: a template of the same
arity whose parameters are renamed after the fields (``CodeType.replace``), so a keyword argument
binds by the field's name and a call costs what namedtuple's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Record"]

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    from types import FunctionType

    try:
        from _collections import _tuplegetter
    except ImportError:  # not CPython: what collections.namedtuple falls back to
        from operator import itemgetter as _itemgetter

        def _tuplegetter(index, doc):
            return property(_itemgetter(index), doc=doc)

    _new = tuple.__new__

    # __new__ of 0 to 12 fields, as namedtuple writes it: `lambda _cls, a, b: _new(_cls, (a, b))`.
    def _new0(_cls):
        return _new(_cls, ())

    def _new1(_cls, a):
        return _new(_cls, (a,))

    def _new2(_cls, a, b):
        return _new(_cls, (a, b))

    def _new3(_cls, a, b, c):
        return _new(_cls, (a, b, c))

    def _new4(_cls, a, b, c, d):
        return _new(_cls, (a, b, c, d))

    def _new5(_cls, a, b, c, d, e):
        return _new(_cls, (a, b, c, d, e))

    def _new6(_cls, a, b, c, d, e, f):
        return _new(_cls, (a, b, c, d, e, f))

    def _new7(_cls, a, b, c, d, e, f, g):
        return _new(_cls, (a, b, c, d, e, f, g))

    def _new8(_cls, a, b, c, d, e, f, g, h):
        return _new(_cls, (a, b, c, d, e, f, g, h))

    def _new9(_cls, a, b, c, d, e, f, g, h, i):
        return _new(_cls, (a, b, c, d, e, f, g, h, i))

    def _new10(_cls, a, b, c, d, e, f, g, h, i, j):
        return _new(_cls, (a, b, c, d, e, f, g, h, i, j))

    def _new11(_cls, a, b, c, d, e, f, g, h, i, j, k):
        return _new(_cls, (a, b, c, d, e, f, g, h, i, j, k))

    def _new12(_cls, a, b, c, d, e, f, g, h, i, j, k, m):
        return _new(_cls, (a, b, c, d, e, f, g, h, i, j, k, m))

    _TEMPLATES = [_new0, _new1, _new2, _new3, _new4, _new5, _new6, _new7, _new8, _new9]
    _TEMPLATES += [_new10, _new11, _new12]  # _TEMPLATES[n]: n fields

    def _constructor(name, fields, defaults):
        if len(fields) < len(_TEMPLATES):
            code = _TEMPLATES[len(fields)].__code__
            new = FunctionType(code.replace(co_varnames=("_cls", *fields)), globals())
        else:  # more fields than any template: compiled, as namedtuple does
            args = ", ".join(fields)
            new = eval(f"lambda _cls, {args}: _new(_cls, ({args},))", {"_new": _new})
        new.__name__ = "__new__"
        new.__qualname__ = f"{name}.__new__"
        new.__defaults__ = defaults or None
        return new

    class _RecordBase(tuple):
        """What every record shares (collections.namedtuple's methods, written once)."""

        __slots__ = ()

        @classmethod
        def _make(cls, iterable):
            result = _new(cls, iterable)
            if len(result) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
            return result

        def _replace(self, /, **changes):
            result = _new(self.__class__, map(changes.pop, self._fields, self))
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return result

        def __repr__(self):
            return self.__class__.__name__ + self._repr_format % tuple(self)

        def _asdict(self):
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self):
            return tuple(self)

    def _annotations(namespace):
        if "__annotations__" in namespace:
            return namespace["__annotations__"]
        import annotationlib  # Python 3.14: annotations made when asked for (as typing does it)

        annotate = annotationlib.get_annotate_from_class_namespace(namespace)
        if annotate is None:
            return {}
        return annotationlib.call_annotate_function(annotate, annotationlib.Format.FORWARDREF)

    class _RecordMeta(type):
        def __new__(mcs, name, bases, namespace):
            if bases != (_Record,):
                raise TypeError("a record's only base is Record (no other base, no subclass)")
            fields = tuple(_annotations(namespace))
            defaults = {}
            for index, field in enumerate(fields):
                if field.startswith("_"):
                    raise AttributeError(f"{name}: a field name cannot start with '_': {field}")
                if field in namespace:
                    defaults[field] = namespace[field]
                elif defaults:
                    raise TypeError(f"{name}: field {field} without a default follows one with")
                namespace[field] = _tuplegetter(index, f"Alias for field number {index}")
            namespace.update(
                __slots__=(),
                __new__=_constructor(name, fields, tuple(defaults.values())),
                _fields=fields,
                _field_defaults=defaults,
                __match_args__=fields,
                _repr_format="(" + ", ".join(f"{field}=%r" for field in fields) + ")",
            )
            namespace.setdefault("__doc__", f"{name}({', '.join(fields)})")
            return type(name, (_RecordBase,), namespace)

    _Record = type.__new__(_RecordMeta, "Record", (), {})

    def Record(typename, fields=None, /):
        """A class statement's base (``class Budget(Record)``), as ``typing.NamedTuple`` is."""
        raise TypeError("use Record as a base class: class Name(Record): field: type ...")

    Record.__mro_entries__ = lambda bases: (_Record,)
