"""A run's options in a file: read a YAML or JSON config file, merge it with the command line, print one.

The options are the ones :mod:`.options` describes (the one place they are described): ``arch``,
every entry of :data:`~.options.OPTIONS`, ``seed``, ``device`` and ``out``, with the model
hyperparameters either at the top level under their own names (``mul: 2``) or in an ``hparams``
mapping (which may also hold a hyperparameter that has no option of its own). A key may be written
as the option's name or as its flag without the dashes (``batch_size`` or ``batch-size``). Values
are checked and converted by the option's type, so ``lr: 1e-3`` is a number even where YAML reads
it as text. An unknown key, or a value of the wrong type, is a one-line error naming the key.

A run folder's own ``config.json`` is a config file too: its recorded options are read, less what a
new run must not take over (its folder, and the task and dataset the arch implies), so a run can be
repeated, or varied (another seed), from it.

JSON needs nothing; YAML is read with PyYAML's ``safe_load`` (plain data only: a file never runs
code). Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from .options import DEVICES, HPARAMS, OPTIONS, RUN_FORMAT, RUN_OPTIONS, SEED_MAX, TrainConfig

__all__ = ["read_config_file", "merge_options", "to_yaml", "printable_options", "KEYS"]

FIELD = "config"  # the parameter errors about a config file name

#: Every spelling of a key a config file may use -> the option's name.
KEYS: dict[str, str] = {}
for _o in OPTIONS:
    for _spelling in (_o.name, _o.flags.lstrip("-"), _o.flags.lstrip("-").replace("-", "_")):
        KEYS.setdefault(_spelling, _o.name)
for _name in RUN_OPTIONS:
    KEYS.setdefault(_name, _name)
_TYPES: dict[str, Any] = {o.name: o for o in OPTIONS}
_RECORDED_ONLY = ("task", "dataset", "out")  # in a run's config.json: what a new run works out (or picks) itself


def _error(path: Any, message: str) -> InvalidParameter:
    return InvalidParameter(FIELD, f"{path}: {message}")


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise _error(path, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    try:
        import yaml
    except ImportError:
        raise _error(path, "reading YAML needs PyYAML, which is not installed (JSON files need nothing)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise _error(path, f"not valid YAML ({problem}{where})") from None


def _convert(path: Any, key: str, value: Any) -> Any:
    """``value`` of option ``key`` as the command line would have made it, or a one-line error."""
    if value is None:
        return None
    o = _TYPES.get(key)
    kind = o.type if o is not None else {"seed": int, "device": str, "out": "path", "arch": str}.get(key, str)
    choices = o.choices if o is not None else (DEVICES if key == "device" else ())

    def bad(what: str) -> InvalidParameter:
        return _error(path, f"{key} must be {what}, got {value!r}")

    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise bad("true or false")
    if kind is int:
        if isinstance(value, bool):
            raise bad("a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise bad("a whole number") from None
        if not isinstance(value, int):
            raise bad("a whole number")
        if key == "seed" and not 0 <= value <= SEED_MAX:
            raise bad(f"in 0..{SEED_MAX}")
        return value
    if kind is float:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if not isinstance(value, str):
        raise bad("text" if not choices else f"one of {', '.join(choices)}")
    if choices and value not in choices:
        raise bad(f"one of {', '.join(choices)}")
    return value


def _unknown(path: Any, key: Any, known: list[str], where: str = "") -> InvalidParameter:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
    return _error(path, f"unknown key {key!r}{where}{hint}")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The options a config file sets: ``TrainConfig`` field names (``hparams`` a mapping), values
    converted by each option's type; ``None`` values are left out (the option's default applies).

    A run folder's ``config.json`` gives its recorded options less ``out``, ``task`` and ``dataset``.
    Raises :class:`~coordconv_data.errors.InvalidParameter` (field ``config``) in one line for a file
    that cannot be read or parsed, is not a mapping, or holds an unknown key or a value of the wrong type.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise _error(p, "no such file") from None
    except IsADirectoryError:
        raise _error(p, "is a folder, not a config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _error(p, f"cannot read it ({getattr(e, 'strerror', None) or e})") from None
    raw = _parse(p, text)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _error(p, f"must hold a mapping of option names to values, not a {type(raw).__name__}")
    if raw.get("format") == RUN_FORMAT and isinstance(raw.get("options"), dict):  # a run folder's config.json
        raw = {k: v for k, v in raw["options"].items() if k not in _RECORDED_ONLY}
    out: dict[str, Any] = {}
    hparams: dict[str, Any] = {}
    for key, value in raw.items():
        name = KEYS.get(key) if isinstance(key, str) else None
        if name is None:
            raise _unknown(p, key, sorted(set(KEYS.values())))
        if name == "hparams":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _error(p, f"hparams must be a mapping of hyperparameter names to values, got {value!r}")
            for hp, v in value.items():
                if not isinstance(hp, str):
                    raise _unknown(p, hp, list(HPARAMS), " in hparams")
                hp = KEYS.get(hp, hp) if KEYS.get(hp) in HPARAMS else hp
                if hp in HPARAMS:
                    v = _convert(p, hp, v)
                if v is not None:
                    hparams[hp] = v  # one without an option of its own is checked against the arch's builder
            continue
        value = _convert(p, name, value)
        if value is None:
            continue
        if name in HPARAMS:
            hparams[name] = value
        else:
            out[name] = value
    if hparams:
        out["hparams"] = hparams
    return out


def merge_options(from_file: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The file's options overridden by those given on the command line (both ``TrainConfig``-shaped:
    hyperparameters under ``hparams``; ``given`` holds only what the user gave)."""
    merged = {**from_file, **{k: v for k, v in given.items() if k != "hparams"}}
    hparams = {**from_file.get("hparams", {}), **given.get("hparams", {})}
    if hparams:
        merged["hparams"] = hparams
    return merged


def printable_options(cfg: TrainConfig) -> dict[str, Any]:
    """A resolved config as a config file writes it: every option in :data:`RUN_OPTIONS` order, the
    arch's hyperparameters under ``hparams``; options the arch does not take (left ``None``) are left
    out, except ``data`` and ``out``, whose ``None`` means the default file and folder."""
    d = cfg.as_dict()
    out: dict[str, Any] = {}
    for name in RUN_OPTIONS:
        value = d.get(name)
        if name == "logger" and value is None:
            value = "csv"
        if value is None and name not in ("data", "out"):
            continue
        out[name] = dict(value) if name == "hparams" else value
    return out


# -- YAML out (a small emitter: printing needs no PyYAML) ---------------------------------------------

_PLAIN_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # 1e-05 is text to YAML 1.1; 1.0e-05 a number
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    plain = (text and text.lower() not in _PLAIN_WORDS and text[0].isalpha() or text[:1] in "/._") and all(
        c.isalnum() or c in "_-./" for c in text)
    if plain:
        try:
            float(text)
        except ValueError:
            return text
    return json.dumps(text)  # a double-quoted YAML scalar


def to_yaml(options: dict[str, Any], comments: dict[str, str] | None = None, header: str = "") -> str:
    """``options`` (scalars, one level of nested mappings) as YAML that :func:`read_config_file` and
    any YAML reader read back to the same values; ``comments`` after a key's line."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in options.items():
        note = f"  # {comments[key]}" if comments and key in comments else ""
        if isinstance(value, dict):
            lines.append(f"{key}:" + (" {}" if not value else "") + note)
            lines += [f"  {k}: {_scalar(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_scalar(value)}{note}")
    return "\n".join(lines) + "\n"
