"""One source for every engine option: the ``run_*`` signature and its numpydoc docstring.

Each stage declares its commands as :class:`Command` objects (the ``run_*`` function, which of
its positional parameters are inputs and which is the output). From the function alone
:func:`describe` derives a :class:`ParameterSpec` per keyword-only option: name, JSON type,
default, choices, units (from the name's suffix, ``_kev`` -> keV) and help text (the
docstring's Parameters entry, following "see :func:`other`" references). The command line
(``--name-with-dashes``), the REST API's list of job kinds and the parameter validation of
submitted jobs are all built from these specs, so they say the same words.

Conventions the generator applies:

- a ``bool`` option becomes ``--name`` / ``--no-name``;
- an ``int`` option called ``axis`` or ``*_axis`` accepts 0, 1, 2 or z, y, x;
- ``tuple[float, float]`` takes two values (``--range-kev 0 160``), ``tuple[float, ...]`` one
  or more, a tuple of (start, stop) pairs their flattened values;
- an option that takes text or a number (``--center auto|PX``) passes numbers as numbers and
  ``A,B`` as a pair when the signature accepts one, any other text unchanged for the engine
  function to interpret (JSON transforms, calibration lines);
- choices come from the :class:`Option` a command declares or a ``{"a", "b"}`` docstring type.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import re
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from analysis_engine.errors import EngineInputError

__all__ = [
    "AXIS_NAMES",
    "Command",
    "Option",
    "ParameterSpec",
    "describe",
    "flag_for",
    "parameter_docs",
    "validate_parameters",
]

#: parameter-name suffixes and the units they state (STYLE: units in names)
UNIT_SUFFIXES = (
    ("_cm2_s", "cm^2/s"),
    ("_mol_cm3", "mol/cm^3"),
    ("_cm2", "cm^2"),
    ("_kev", "keV"),
    ("_deg", "deg"),
    ("_um", "um"),
    ("_mm", "mm"),
    ("_au", "a.u."),
    ("_hz", "Hz"),
    ("_pct", "%"),
    ("_ohm", "ohm"),
    ("_k", "K"),
)
AXIS_NAMES = {"z": 0, "y": 1, "x": 2}
NOT_OPTIONS = frozenset({"progress"})  # keyword-only but supplied by the caller, not the user

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Option:
    """What a command adds to the signature for one option: nothing the signature knows.

    ``choices`` where a constant of the engine lists them; ``aliases`` only for flags the CLI
    contract names differently from the parameter (a migration path); ``parse`` turns the
    command-line text into the engine's value where no convention above fits (``--slices
    A:B``), with ``metavar`` saying what it expects.
    """

    choices: Sequence[Any] | None = None
    aliases: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None


@dataclass(frozen=True)
class ParameterSpec:
    """One option of an engine function, as the CLI, the API and the docs present it.

    ``type`` is a JSON type (``boolean``, ``integer``, ``number``, ``string``, ``array``) or
    several joined by ``|``; ``items`` and ``length`` describe an array's elements;
    ``default`` is JSON-ready (tuples as lists).
    """

    name: str
    type: str
    default: Any
    required: bool
    help: str
    choices: tuple[Any, ...] | None = None
    units: str | None = None
    items: str | None = None
    length: int | None = None
    flags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (the REST API's ``/jobs/kinds/`` shows this)."""
        out = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "help": self.help,
            "choices": list(self.choices) if self.choices is not None else None,
            "units": self.units,
            "flags": list(self.flags),
        }
        if self.items is not None:
            out["items"] = self.items
            out["length"] = self.length
        return out


@dataclass(frozen=True)
class _Kind:
    """How a Python annotation maps onto JSON and the command line."""

    json: str  # JSON type(s), "|"-joined
    items: str | None = None
    length: int | None = None
    group: int | None = None  # tuple of fixed tuples: values per group (box: 2)
    scalar: type | None = None  # float / int / str for CLI conversion
    smart_text: bool = False  # text or number(s): convert numbers, keep words
    raw_text: bool = False  # text interpreted by the engine function (JSON, "A,B")


# --------------------------------------------------------------------------------- docstrings


def flag_for(name: str) -> str:
    """The command-line flag of parameter ``name`` (``d_electrolyte_cm2_s`` -> ``--d-...``)."""
    return "--" + name.replace("_", "-")


def _units(name: str) -> str | None:
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return None


_ENTRY = re.compile(r"^(?P<names>[A-Za-z_][\w, ]*?)\s*(?::\s*(?P<type>.*))?$")
_FUNC_REF = re.compile(r":(?:func|meth|class):`~?([\w.]+)`")
_SEE = re.compile(r"^(?:see|as for|as in|as)\b", re.IGNORECASE)


def _sections(doc: str) -> dict[str, list[str]]:
    lines = inspect.cleandoc(doc).splitlines()
    sections: dict[str, list[str]] = {"": []}
    current = ""
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()) and lines[i]:
            current = lines[i].strip().lower()
            sections[current] = []
            i += 2
            continue
        sections[current].append(lines[i])
        i += 1
    return sections


@dataclass(frozen=True)
class _DocEntry:
    names: tuple[str, ...]
    type: str
    text: str


def _entries(doc: str | None) -> list[_DocEntry]:
    if not doc:
        return []
    lines = _sections(doc).get("parameters", [])
    entries: list[_DocEntry] = []
    header: list[str] = []
    body: list[str] = []

    def close() -> None:
        if not header:
            return
        match = _ENTRY.match(" ".join(header))
        if match:
            names = tuple(n.strip() for n in match.group("names").split(",") if n.strip())
            text = " ".join(" ".join(body).split())
            entries.append(_DocEntry(names, (match.group("type") or "").strip(), text))

    for line in lines:
        if not line.strip():
            continue
        if line[0].isspace():
            body.append(line.strip())
        elif header and not body and header[-1].rstrip().endswith(","):
            header.append(line.strip())  # a list of names continued on the next line
        else:
            close()
            header, body = [line.strip()], []
    close()
    return entries


def _resolve(reference: str, context: Callable[..., Any]) -> Callable[..., Any] | None:
    """The function a ``:func:`` reference in ``context``'s docstring names, if importable."""
    namespace = getattr(context, "__globals__", {})
    if reference in namespace:
        return namespace[reference]
    module_name, _, attribute = reference.rpartition(".")
    while module_name:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attribute = f"{head}.{attribute}"
            continue
        target: Any = module
        for part in attribute.split("."):
            target = getattr(target, part, None)
        return target if callable(target) else None
    return None


def _doc_of(function: Callable[..., Any], name: str, depth: int = 4) -> tuple[str, str] | None:
    """(type, text) documenting ``name`` for ``function``, following "see :func:`x`"."""
    if depth == 0:
        return None
    doc = inspect.getdoc(function)
    for entry in _entries(doc):
        if name not in entry.names:
            continue
        refers = _FUNC_REF.findall(entry.text)
        if refers and (not entry.text or len(entry.names) > 1 or _SEE.match(entry.text)):
            for reference in refers:
                target = _resolve(reference, function)
                found = target and _doc_of(target, name, depth - 1)
                if found and found[1]:
                    return found[0] or entry.type, found[1]
        if entry.text:
            return entry.type, entry.text
        type_only = entry.type
        break
    else:
        type_only = ""
    for reference in _FUNC_REF.findall(doc or ""):  # "Parameters as :func:`x`, plus: ..."
        target = _resolve(reference, function)
        if target is not None and target is not function:
            found = _doc_of(target, name, depth - 1)
            if found and found[1]:
                return type_only or found[0], found[1]
    return (type_only, "") if type_only else None


def parameter_docs(function: Callable[..., Any]) -> dict[str, str]:
    """Help text of every parameter of ``function`` from its docstring (empty if missing)."""
    out = {}
    for name in inspect.signature(function).parameters:
        found = _doc_of(function, name)
        out[name] = _plain(found[1]) if found else ""
    return out


def _plain(text: str) -> str:
    """Docstring markup to plain words: ``x`` -> x, :func:`a.b` -> b."""
    text = re.sub(r":\w+:`~?(?:[\w]+\.)*([\w]+)`", r"\1", text)
    return text.replace("``", "")


def _doc_choices(type_text: str) -> tuple[Any, ...] | None:
    match = re.search(r"\{([^}]*)\}", type_text)
    if not match:
        return None
    values = []
    for item in match.group(1).split(","):
        item = item.strip().strip("'\"")
        try:
            values.append(int(item))
        except ValueError:
            values.append(item)
    return tuple(values)


# -------------------------------------------------------------------------------- annotations


def _args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _is_tuple(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (tuple, list, Sequence) or annotation in (list, tuple, Sequence)


def _scalar_json(annotation: Any) -> str | None:
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if (
        annotation is str
        or annotation is os.PathLike
        or typing.get_origin(annotation) is (os.PathLike)
    ):
        return "string"
    return None


def _sequence_kind(annotation: Any) -> _Kind:
    args = typing.get_args(annotation)
    if not args:
        return _Kind("array", items="any", raw_text=True)
    if len(args) == 2 and args[1] is Ellipsis or typing.get_origin(annotation) is not tuple:
        item = args[0]
        return _Kind("array", items=_scalar_json(item) or "any", scalar=item)
    if all(_is_tuple(a) for a in args):  # tuple of (start, stop) pairs
        inner = typing.get_args(args[0])
        return _Kind(
            "array",
            items="array",
            length=len(args),
            group=len(inner),
            scalar=inner[0] if inner else int,
        )
    return _Kind("array", items=_scalar_json(args[0]) or "any", length=len(args), scalar=args[0])


def _kind(annotation: Any) -> _Kind:
    options = _args(annotation)
    if len(options) == 1:
        (only,) = options
        if only is bool or only is int or only is float:
            return _Kind(_scalar_json(only), scalar=only)  # type: ignore[arg-type]
        if _is_tuple(only):
            return _sequence_kind(only)
        if _scalar_json(only) == "string":
            return _Kind("string", scalar=str)
        return _Kind("string", raw_text=True)
    jsons = {_scalar_json(o) for o in options}
    if jsons <= {"string"}:  # str | os.PathLike
        return _Kind("string", scalar=str)
    numeric = {o for o in options if o in (int, float)}
    pairs = [o for o in options if _is_tuple(o)]
    others = [o for o in options if o not in numeric and o not in pairs and o is not str]
    if str in options and not others and not any(o is os.PathLike for o in options):
        names = ["string", *(["number"] if numeric else []), *(["array"] if pairs else [])]
        return _Kind("|".join(names), smart_text=True)
    names = ["string"] + (["number"] if numeric else []) + (["array"] if pairs else [])
    if any(_is_mapping(o) for o in others):
        names.append("object")
    if bool in options:
        names = ["boolean", *names]
    return _Kind("|".join(dict.fromkeys(names)), raw_text=True)


def _is_mapping(annotation: Any) -> bool:
    return annotation is dict or typing.get_origin(annotation) in (dict, Mapping)


def _json_default(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, tuple | list):
        return [_json_default(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


@cache
def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(function)


def describe(
    function: Callable[..., Any], *, options: Mapping[str, Option] | None = None
) -> tuple[ParameterSpec, ...]:
    """The keyword-only options of an engine function (``progress`` excluded).

    Parameters
    ----------
    function : callable
        A ``run_*`` function (or any engine function with keyword-only options and a numpydoc
        docstring).
    options : mapping of name to Option, optional
        What the command declares beyond the signature (choices from an engine constant,
        contract aliases).

    Returns
    -------
    tuple of ParameterSpec
        In signature order.
    """
    options = options or {}
    hints = _hints(function)
    specs = []
    for param in inspect.signature(function).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.name in NOT_OPTIONS:
            continue
        specs.append(_spec(function, param, hints.get(param.name, Any), options.get(param.name)))
    return tuple(specs)


def _spec(
    function: Callable[..., Any],
    param: inspect.Parameter,
    annotation: Any,
    option: Option | None,
) -> ParameterSpec:
    kind = _kind(annotation)
    found = _doc_of(function, param.name)
    type_text, text = found if found else ("", "")
    choices = option.choices if option and option.choices is not None else None
    if choices is None and kind.json in ("string", "integer"):
        choices = _doc_choices(type_text)
    return ParameterSpec(
        name=param.name,
        type=kind.json,
        default=_json_default(param.default),
        required=param.default is inspect.Parameter.empty,
        help=_plain(text),
        choices=tuple(choices) if choices is not None else None,
        units=_units(param.name),
        items=kind.items,
        length=kind.length,
        flags=(flag_for(param.name), *(option.aliases if option else ())),
    )


# ------------------------------------------------------------------------- value conversions


def _parse_axis(text: str) -> int:
    key = text.strip().lower()
    if key in AXIS_NAMES:
        return AXIS_NAMES[key]
    if key in ("0", "1", "2"):
        return int(key)
    raise argparse.ArgumentTypeError(f"axis must be 0, 1, 2 or z, y, x, got {text!r}")


def _parse_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def _parse_integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _parse_smart(text: str) -> Any:
    """A number, ``A,B`` numbers as a tuple, or the word itself."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return text.strip()
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def _wrap(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser whose EngineInputError reads as a bad option (exit 2 with one line)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except EngineInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


_SCALAR_PARSERS: dict[Any, Callable[[str], Any]] = {
    float: _parse_number,
    int: _parse_integer,
    str: str,
}


# ----------------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    """A command of ``python -m analysis_engine`` and the job kind of the same function.

    Parameters
    ----------
    name : str
        Command name (``eis-sim``).
    function : callable
        The ``run_*`` function: positional ``inputs`` then ``output``, keyword-only options.
    inputs : tuple of str
        Its positional parameters that name input files, in order; a parameter annotated as a
        sequence takes one or more files.
    output : str or None
        The positional parameter written to, given as ``-o/--output`` (None: none).
    options : mapping of name to Option
        Declarations beyond the signature (see :class:`Option`).
    cli_summary : callable, optional
        Shortens the summary for the one JSON line (e.g. drops Plotly figures).
    """

    name: str
    function: Callable[..., dict[str, Any]]
    inputs: tuple[str, ...]
    output: str | None = "output_path"
    options: Mapping[str, Option] = field(default_factory=dict)
    cli_summary: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def parameters(self) -> tuple[ParameterSpec, ...]:
        """The job/CLI options (keyword-only parameters) of the function."""
        return describe(self.function, options=self.options)

    @property
    def summary(self) -> str:
        """First line of the function's docstring: the command's one-line help."""
        return _plain((inspect.getdoc(self.function) or "").split("\n\n")[0].replace("\n", " "))

    def check(self) -> None:
        """Raise TypeError when ``inputs``/``output`` disagree with the signature."""
        signature = inspect.signature(self.function)
        positional = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        declared = [*self.inputs, *([self.output] if self.output else [])]
        if positional != declared:
            raise TypeError(
                f"{self.name}: {self.function.__name__} takes {positional} positionally, "
                f"the command declares {declared}"
            )
        unknown = set(self.options) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{self.name}: options for unknown parameters {sorted(unknown)}")

    def add_to(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add this command's sub-parser (generated from the signature) to ``subparsers``."""
        self.check()
        doc = parameter_docs(self.function)
        hints = _hints(self.function)
        parser = subparsers.add_parser(
            self.name,
            help=self.summary,
            description=self.summary,
            formatter_class=_HelpFormatter,
        )
        for name in self.inputs:
            many = _is_tuple(_args(hints.get(name, str))[0])
            parser.add_argument(
                name,
                metavar=name.upper(),
                nargs="+" if many else None,
                help=_escape(doc.get(name, "")),
            )
        if self.output:
            parser.add_argument(
                "-o",
                "--output",
                dest=self.output,
                required=True,
                metavar="OUT",
                help=_escape(doc.get(self.output, "")),
            )
        for spec in self.parameters:
            self._add_option(parser, spec, hints.get(spec.name, Any))
        parser.set_defaults(command=self)
        return parser

    def _add_option(self, parser: argparse.ArgumentParser, spec: ParameterSpec, hint: Any) -> None:
        option = self.options.get(spec.name) or Option()
        kind = _kind(hint)
        default = inspect.signature(self.function).parameters[spec.name].default
        kwargs: dict[str, Any] = {"dest": spec.name, "help": _escape(_help_line(spec))}
        if spec.required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if option.parse is not None:
            kwargs.update(type=_wrap(option.parse), metavar=option.metavar)
        elif kind.json == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind.json == "integer" and (spec.name == "axis" or spec.name.endswith("_axis")):
            kwargs.update(type=_parse_axis, metavar="{0,1,2,z,y,x}")
        elif kind.json == "array":
            scalar = _SCALAR_PARSERS.get(kind.scalar, str)
            count = kind.length * kind.group if kind.group and kind.length else kind.length
            kwargs.update(type=scalar, nargs=count or "+")
        elif kind.smart_text:
            kwargs.update(type=_parse_smart, metavar=option.metavar or "VALUE")
        elif kind.raw_text:
            kwargs.update(type=str, metavar=option.metavar or "TEXT")
        else:
            kwargs["type"] = _SCALAR_PARSERS.get(kind.scalar, str)
        if spec.choices is not None and "action" not in kwargs:
            kwargs["choices"] = spec.choices
        if option.metavar and "metavar" not in kwargs:
            kwargs["metavar"] = option.metavar
        parser.add_argument(*spec.flags, **kwargs)

    def arguments(self, args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments of the function for parsed ``args``."""
        hints = _hints(self.function)
        positional = [getattr(args, name) for name in self.inputs]
        if self.output:
            positional.append(getattr(args, self.output))
        keywords = {
            spec.name: _from_cli(getattr(args, spec.name), _kind(hints.get(spec.name, Any)))
            for spec in self.parameters
        }
        return positional, keywords

    def call(self, args: argparse.Namespace, *, progress: ProgressFn | None = None) -> Any:
        """Run the function with parsed command-line arguments; return its summary."""
        positional, keywords = self.arguments(args)
        if "progress" in inspect.signature(self.function).parameters:
            keywords["progress"] = progress
        summary = self.function(*positional, **keywords)
        return self.cli_summary(summary) if self.cli_summary else summary


def _from_cli(value: Any, kind: _Kind) -> Any:
    """argparse lists -> the tuples the signature declares (pairs regrouped)."""
    if kind.json != "array" or not isinstance(value, list):
        return value
    if kind.group:
        return tuple(tuple(value[i : i + kind.group]) for i in range(0, len(value), kind.group))
    return tuple(value)


def _help_line(spec: ParameterSpec) -> str:
    text = spec.help
    if spec.units and not re.search(rf"(?<![\w^/]){re.escape(spec.units)}(?!\w)", text):
        text = f"{text} [{spec.units}]" if text else f"[{spec.units}]"
    if not spec.required and spec.default is not None and spec.type != "boolean":
        text = f"{text} (default: {_show(spec.default)})"
    return text


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_show(v) for v in value)
    return str(value)


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help at spaces only: "finite-volume" and "/entry/data" stay whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _escape(text: str) -> str:
    return text.replace("%", "%%")


# --------------------------------------------------------------------------------- validation


def _matches(value: Any, json_type: str) -> bool:
    checks = {
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "array": lambda v: isinstance(v, list | tuple),
        "object": lambda v: isinstance(v, dict),
    }
    return any(checks.get(t, lambda v: True)(value) for t in json_type.split("|"))


def validate_parameters(
    function_or_command: Callable[..., Any] | Command, parameters: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Check job parameters against an engine function's options; return them for the call.

    Names must be options of the function, required options present, values of the declared
    JSON type (an integer is accepted for a number), within the choices, and arrays of the
    declared length; JSON lists become the tuples the signature declares.

    Raises
    ------
    EngineInputError
        The first problem, naming the option, what was given and what was expected.
    """
    if isinstance(function_or_command, Command):
        function, specs = function_or_command.function, function_or_command.parameters
    else:
        function, specs = function_or_command, describe(function_or_command)
    by_name = {s.name: s for s in specs}
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(by_name))
    if unknown:
        raise EngineInputError(
            f"{function.__name__} has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(sorted(by_name)) or 'none'}"
        )
    missing = [s.name for s in specs if s.required and s.name not in parameters]
    if missing:
        raise EngineInputError(f"missing required option(s) {', '.join(missing)}")
    out = {}
    for name, value in parameters.items():
        spec = by_name[name]
        if value is None and not spec.required:
            out[name] = None
            continue
        if not _matches(value, spec.type):
            raise EngineInputError(
                f"option {name} expects {spec.type.replace('|', ' or ')}, got {value!r}"
            )
        if spec.choices is not None and not isinstance(value, list | tuple):
            if value not in spec.choices:
                raise EngineInputError(
                    f"option {name} must be one of {', '.join(map(str, spec.choices))}, "
                    f"got {value!r}"
                )
        if isinstance(value, list | tuple) and spec.type == "array":
            if spec.length is not None and len(value) != spec.length:
                raise EngineInputError(
                    f"option {name} expects {spec.length} values, got {len(value)}"
                )
            if spec.items in ("number", "integer") and not all(
                _matches(v, spec.items) for v in value
            ):
                raise EngineInputError(f"option {name} expects {spec.items}s, got {value!r}")
        out[name] = _tuples(value) if "array" in spec.type.split("|") else value
    return out


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value
