"""Search spaces as data: ``[search.space.NAME]`` tables checked before any trial runs.

Each parameter is one table::

    [search.space.learning_rate]
    type = "float"            # float (low, high, log, step) | int (low, high, step, log)
    low = 1e-5                # | categorical (choices) | fixed (value)
    high = 5e-4
    log = true

A parameter name must be a key of ``config.PARAMETER_TARGETS``: a searched knob that never reaches
the trial would make the optimizer chase noise. Bounds and choices may name the teacher's shape
(``"teacher_layers"``, ``"teacher_heads"``, ``"teacher_hidden"``, ``"teacher_intermediate"``, with
an optional factor: ``"2*teacher_layers"``), read from the teacher's ``config.json``.

Everything that would only fail inside a trial, minutes later, fails here with a ConfigError that
names the parameter: empty or inverted ranges, log scales that reach 0, empty choices, values of
the wrong type for their config field, dropout of 1, more heads than the teacher has, a hidden
width that some head count does not divide.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from paretodistill.config import PARAMETER_TARGETS, ExperimentConfig, SearchSettings, rule_of, with_parameters
from paretodistill.distill.engine import TeacherShape, prepare
from paretodistill.errors import ConfigError
from paretodistill.search.presets import SPACE_PRESETS

TYPES = ("float", "int", "categorical", "fixed")
_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
    "fixed": {"type", "value"},
}

_SYMBOL = re.compile(r"\s*(?:([0-9]*\.?[0-9]+)\s*\*\s*)?teacher_(layers|heads|hidden|intermediate)\s*")


def resolve_symbol(value: Any, teacher: TeacherShape | None, where: str) -> Any:
    """``"2*teacher_layers"`` -> a number from the teacher's shape; anything else unchanged."""
    if not isinstance(value, str):
        return value
    match = _SYMBOL.fullmatch(value)
    if not match:
        return value
    if teacher is None:
        raise ConfigError(
            f"{where}: {value!r} needs the teacher's shape, but teacher.path does not point to a "
            f"checkpoint with a config.json; set teacher.path or write a number"
        )
    factor = float(match.group(1)) if match.group(1) else 1.0
    number = factor * getattr(teacher, match.group(2))
    return int(number) if float(number).is_integer() else number


# ---------------------------------------------------------------- one parameter
def _field_type(name: str) -> Any:
    """The (non-None) annotation of the config field a parameter sets."""
    section, key = PARAMETER_TARGETS[name].split(".")
    hints = typing.get_type_hints(type(getattr(ExperimentConfig(), section)))
    options = [a for a in typing.get_args(hints[key]) if a is not type(None)] or [hints[key]]
    return options[0]


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter, with every symbolic bound already resolved."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    value: Any = None

    def distribution(self):
        """The Optuna distribution (``fixed`` is a one-choice categorical: recorded, never sampled)."""
        if self.type == "float":
            return FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return IntDistribution(self.low, self.high, log=self.log, step=self.step or 1)
        if self.type == "categorical":
            return CategoricalDistribution(list(self.choices))
        return CategoricalDistribution([self.value])

    def candidate_values(self, limit: int = 10_000) -> list:
        """Values to check against the other parameters (all of them when there are few)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "fixed":
            return [self.value]
        if self.type == "int":
            step = self.step or 1
            count = (self.high - self.low) // step + 1
            if count <= limit:
                return list(range(self.low, self.high + 1, step))
        return [self.low, self.high]

    def to_dict(self) -> dict:
        values = {"type": self.type}
        if self.type in ("float", "int"):
            values.update(low=self.low, high=self.high, log=self.log)
            if self.step is not None:
                values["step"] = self.step
        elif self.type == "categorical":
            values["choices"] = list(self.choices)
        else:
            values["value"] = self.value
        return values


def _number(value: Any, where: str, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not finite")
    return float(value)


def parse_param(name: str, table: Any, teacher: TeacherShape | None) -> ParamSpec:
    """A ``ParamSpec`` from one ``[search.space.NAME]`` table; ConfigError on anything malformed."""
    where = f"search.space.{name}"
    if name not in PARAMETER_TARGETS:
        raise ConfigError(
            f"{where}: {name!r} is not a searchable parameter (it would never reach the trial); "
            f"searchable: {sorted(PARAMETER_TARGETS)}"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table with a type, got {table!r}")
    kind = table.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}: unknown type {kind!r}; expected one of {list(TYPES)}")
    unknown = set(table) - _KEYS[kind]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind!r}; valid: {sorted(_KEYS[kind])}")
    field_type = _field_type(name)
    if kind == "fixed":
        spec = _parse_fixed(name, table, teacher, field_type, where)
    elif kind == "categorical":
        spec = _parse_categorical(name, table, teacher, field_type, where)
    else:
        spec = _parse_range(name, kind, table, teacher, field_type, where)

    _check_domain(spec)
    for value in spec.candidate_values(limit=50):  # the config accepts every kind of value it may get
        try:
            with_parameters(ExperimentConfig(), {name: value})
        except ConfigError as error:
            raise ConfigError(f"{where}: value {value!r} does not fit the config field: {error}") from None
    return spec


def _parse_fixed(name: str, table: dict, teacher: TeacherShape | None, field_type: Any, where: str) -> ParamSpec:
    if "value" not in table:
        raise ConfigError(f"{where}: a fixed parameter needs a value")
    value = _bound(table["value"], teacher, f"{where}.value", field_type is int)
    return ParamSpec(name, "fixed", value=_coerce(value, field_type, where))


def _parse_categorical(name: str, table: dict, teacher: TeacherShape | None, field_type: Any, where: str) -> ParamSpec:
    choices = table.get("choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        raise ConfigError(f"{where}: choices must be a non-empty list")
    resolved = tuple(
        _coerce(_bound(c, teacher, f"{where}.choices[{i}]", field_type is int), field_type, f"{where}.choices[{i}]")
        for i, c in enumerate(choices)
    )
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"{where}: choices {list(resolved)} repeat a value")
    return ParamSpec(name, "categorical", choices=resolved)


def _parse_range(name: str, kind: str, table: dict, teacher: TeacherShape | None, field_type: Any, where: str) -> ParamSpec:
    """An ``int`` or ``float`` range: bounds of the field's type, a step that divides it, a log
    scale only above 0 and without a step."""
    integer = kind == "int"
    if integer and field_type is not int:
        raise ConfigError(f"{where}: {name} is a {field_type.__name__} in the config; use type = \"float\"")
    if not integer and field_type is int:
        raise ConfigError(f"{where}: {name} is an integer in the config; use type = \"int\"")
    for key in ("low", "high"):
        if key not in table:
            raise ConfigError(f"{where}: type {kind!r} needs {key}")
    low = _number(_bound(table["low"], teacher, f"{where}.low", integer), f"{where}.low", integer)
    high = _number(_bound(table["high"], teacher, f"{where}.high", integer), f"{where}.high", integer)
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
    step = table.get("step")
    if step is not None:
        step = _number(step, f"{where}.step", integer)
        if step <= 0:
            raise ConfigError(f"{where}.step: must be positive, got {step}")
    if low > high:
        raise ConfigError(f"{where}: inverted range, low {low} > high {high}")
    if low == high:
        raise ConfigError(f"{where}: empty range (low == high == {low}); use type = \"fixed\" for a constant")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    if log and step is not None and step != 1:
        raise ConfigError(f"{where}: step and log cannot be combined (Optuna samples a log scale continuously)")
    if step is not None:
        count = (high - low) / step
        if abs(count - round(count)) > 1e-9:
            raise ConfigError(f"{where}: the range {low}..{high} is not a whole number of steps of {step}")
    return ParamSpec(name, kind, low=low, high=high, log=log, step=step)


def _bound(value: Any, teacher: TeacherShape | None, where: str, integer: bool) -> Any:
    """A bound with teacher symbols resolved (an integer bound takes the floor of a symbolic product)."""
    resolved = resolve_symbol(value, teacher, where)
    return _floor_if(resolved, integer) if isinstance(value, str) else resolved


def _floor_if(value: Any, integer: bool) -> Any:
    """Integer parameters take the floor of a teacher-derived product (e.g. 0.5*7 layers -> 3)."""
    if integer and isinstance(value, float) and math.isfinite(value):
        return math.floor(value)
    return value


def _coerce(value: Any, field_type: Any, where: str) -> Any:
    """Integral floats (``384.0`` from ``0.25*teacher_intermediate``) become ints for int fields."""
    if field_type is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_domain(spec: ParamSpec) -> None:
    """Every value the parameter may take (its bounds, a fixed value, each choice) within its config
    field's rule (``config.rule_of``: the same rules a fixed setting is loaded with)."""
    rule = rule_of(PARAMETER_TARGETS[spec.name])
    for value in spec.candidate_values(limit=50):
        if rule.problem(value):
            extra = " (a dropout of 1 drops everything: use e.g. high = 0.99)" if "dropout" in spec.name else ""
            raise ConfigError(f"search.space.{spec.name}: {value!r} is out of range; {spec.name} must be {rule}{extra}")


# ---------------------------------------------------------------- the whole space
@dataclass(frozen=True)
class SearchSpace:
    params: tuple[ParamSpec, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def distributions(self) -> dict:
        return {p.name: p.distribution() for p in self.params}

    def to_dict(self) -> dict:
        return {p.name: p.to_dict() for p in self.params}


def space_tables(search: SearchSettings) -> dict[str, dict]:
    """The preset's tables (``search.space_preset``) overlaid with the config's ``[search.space.*]``."""
    tables: dict[str, dict] = {}
    if search.space_preset:
        if search.space_preset not in SPACE_PRESETS:
            raise ConfigError(f"search.space_preset: unknown preset {search.space_preset!r}; known: {sorted(SPACE_PRESETS)}")
        tables.update({k: dict(v) for k, v in SPACE_PRESETS[search.space_preset].items()})
    tables.update(search.space)
    return tables


def build_space(config: ExperimentConfig, teacher: TeacherShape | None = ..., *, check_combinations: bool = True) -> SearchSpace:
    """The validated search space of a config (``teacher`` defaults to reading ``teacher.path``)."""
    if teacher is ...:
        teacher = prepare(config).shape
    tables = space_tables(config.search)
    if not tables:
        raise ConfigError(
            "the search space is empty: add [search.space.NAME] tables or search.space_preset = \"cpu\""
        )
    space = SearchSpace(tuple(parse_param(name, table, teacher) for name, table in tables.items()))
    if check_combinations:
        check_combinations_of(space, config, teacher)
    return space


def check_combinations_of(space: SearchSpace, config: ExperimentConfig, teacher: TeacherShape | None) -> None:
    """Refuse spaces where some combination of values cannot be built into a student."""
    student = config.student

    def values(name: str) -> list:
        if name in space:
            return space[name].candidate_values()
        return [getattr(student, name)]

    heads = values("heads_per_layer")
    hidden = values("hidden_size")
    if teacher is not None:
        too_many = [k for k in heads if k is not None and k > teacher.heads]
        if too_many:
            raise ConfigError(
                f"search.space.heads_per_layer: {max(too_many)} exceeds the teacher's {teacher.heads} "
                f"attention heads per layer (a student keeps a subset of them)"
            )
    bad = []
    for width in hidden:
        if width is None or (teacher is not None and width == teacher.hidden):
            continue  # the teacher's width keeps the teacher's head size
        for k in heads:
            k = k if k is not None else (teacher.heads if teacher else None)
            if k is not None and width % k != 0:
                bad.append((width, k))
    if bad:
        shown = ", ".join(f"hidden_size {w} / heads {k}" for w, k in bad[:5])
        raise ConfigError(
            f"search.space: a student narrower or wider than the teacher uses heads of size "
            f"hidden_size / heads_per_layer, but {shown}{' ...' if len(bad) > 5 else ''} do not divide; "
            f"choose hidden_size and heads_per_layer values that always divide"
        )


def resolve_params(params: dict, teacher: TeacherShape | None, where: str) -> dict:
    """Baseline parameters with symbolic values (``"0.5*teacher_layers"``) resolved and checked."""
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: expected a table of parameters, got {params!r}")
    resolved = {}
    for name, value in params.items():
        if name not in PARAMETER_TARGETS:
            raise ConfigError(f"{where}: {name!r} is not a searchable parameter; searchable: {sorted(PARAMETER_TARGETS)}")
        value = _bound(value, teacher, f"{where}.{name}", _field_type(name) is int)
        resolved[name] = _coerce(value, _field_type(name), where)
    try:
        with_parameters(ExperimentConfig(), resolved)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return resolved


__all__ = [
    "ParamSpec", "SearchSpace", "build_space", "check_combinations_of", "parse_param",
    "resolve_params", "resolve_symbol", "space_tables",
]
