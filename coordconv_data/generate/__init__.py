"""Dataset generators: pure functions of a spec and an explicit random generator.

Every generator module has the same entry points:

* ``Spec``: the frozen dataclass of every parameter (recorded in a file's ``params``); invalid values
  raise :class:`~coordconv_data.errors.InvalidParameter` naming the field;
* ``generate(spec, split)``: one split (``"train"`` or ``"test"``) as in-memory arrays, exactly the
  arrays its file holds in the native layout;
* ``write_file(spec, path, *, layout, workers, force, progress)``: the file, written atomically,
  returning the sample count per split;
* ``rebuild(spec, arrays)``: the derived arrays (images, masks, one-hot maps) again from the ones
  that determine them;
* ``estimate_bytes(spec, layout)``: the file's size, checked against free space before writing.
"""

from __future__ import annotations

from numbers import Integral

from ..errors import InvalidParameter

#: Seeds go up to what every generator's random source takes (numpy's legacy ``RandomState``).
SEED_MAX = 2**32 - 1


def require(ok: bool, field: str, message: str) -> None:
    """Raise :class:`InvalidParameter` for ``field`` unless ``ok``; ``message`` names the field."""
    if not ok:
        raise InvalidParameter(field, message)


def check_seed(seed: object, field: str = "seed") -> None:
    require(isinstance(seed, Integral) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX, field,
            f"{field} must be an integer in 0..{SEED_MAX}, got {seed!r}")
