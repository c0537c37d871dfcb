"""A run's recipe with named settings changed: the run folder of a variation, for ablations.

``evaluate RUN --folds --set KEY=VALUE ... --out NEW`` writes ``NEW/run.json``
and ``NEW/features.json`` (RUN's recipe and features with the settings
applied) and trains NEW's folds, so a variation of the default recipe is one
command rather than a hand-edited run.json. KEY is a recipe field
(``label_smoothing``), an augmentation field (``augment.edge_cut``) or a
feature parameter (``features.n_mfcc``); VALUE is JSON (``0.1``,
``[0.8, 1.0]``, ``null``), anything else is taken as a string.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..config import FeatureParams
from ..errors import EdgeError
from .fit import Recipe, read_run

KEPT = ("data", "layout", "split", "fold")
"""run.json entries a variation keeps from its run; everything else there describes a trained model."""


def parse_setting(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> (KEY, VALUE decoded as JSON, or the raw text when it is no JSON)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise EdgeError(f"--set {text!r}: expected KEY=VALUE, e.g. label_smoothing=0.1")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _coerce(name: str, field: dataclasses.Field, old: Any, new: Any) -> Any:
    """``new`` in the type of the field's current value ``old``; EdgeError when it cannot be."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if new is None and "None" in str(field.type):
        return None
    if isinstance(old, bool):
        ok = isinstance(new, bool)
    elif isinstance(old, int):
        ok = isinstance(new, int) and not isinstance(new, bool)
    elif isinstance(old, float):
        ok = number(new)
        new = float(new) if ok else new
    elif isinstance(old, tuple):
        ok = isinstance(new, list) and len(new) == len(old) and all(number(v) for v in new)
        new = tuple(float(v) for v in new) if ok else new
    elif isinstance(old, str):
        ok = isinstance(new, str)
    else:  # None, list or dict: what the field's annotation allows
        kinds = {"int": int, "float": (int, float), "str": str, "list": list, "tuple": list, "dict": dict}
        allowed = tuple(t for name, t in kinds.items() if name in str(field.type))
        ok = isinstance(new, allowed) and not isinstance(new, bool)
    if not ok:
        raise EdgeError(f"--set {name}={json.dumps(new)}: expected a value like {json.dumps(old)}")
    return new


def apply_settings(recipe: Recipe, params: FeatureParams,
                   settings: Sequence[str]) -> tuple[Recipe, FeatureParams]:
    """``recipe`` and ``params`` with every ``KEY=VALUE`` of ``settings`` applied, in order."""
    changes: dict[str, dict[str, Any]] = {"recipe": {}, "augment": {}, "features": {}}
    targets = {"recipe": recipe, "augment": recipe.augment, "features": params}
    for text in settings:
        key, value = parse_setting(text)
        section, _, name = key.rpartition(".")
        section = section or "recipe"
        fields = {f.name: f for f in dataclasses.fields(targets[section])} if section in targets else {}
        if name not in fields or (section == "recipe" and name == "augment"):
            raise EdgeError(f"--set {key}: no such setting (a recipe field such as label_smoothing, "
                            "augment.FIELD or features.FIELD; see RUN/run.json and RUN/features.json)")
        changes[section][name] = _coerce(key, fields[name], getattr(targets[section], name), value)
    try:
        augment = dataclasses.replace(recipe.augment, **changes["augment"])
        params = dataclasses.replace(params, **changes["features"])
        recipe = dataclasses.replace(recipe, augment=augment, **changes["recipe"])
    except (TypeError, ValueError) as exc:
        raise EdgeError(f"--set: {exc}") from None
    return recipe, params


def write_variant(run_dir: str | Path, out: str | Path, settings: Sequence[str]) -> Path:
    """Write ``out``'s run.json and features.json: ``run_dir``'s with ``settings`` applied.

    A folder that already holds this very variation is kept as it is (a second
    sitting of its folds); one holding anything else is refused.
    """
    from ..atomic import write_file

    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise EdgeError(f"--out {out}: a variation needs a folder of its own, not RUN")
    info, params, recipe = read_run(run_dir)
    recipe, params = apply_settings(recipe, params, settings)
    variant = {**{k: info[k] for k in KEPT if k in info}, "seed": recipe.seed, "recipe": recipe.to_dict(),
               "variant_of": str(run_dir), "settings": list(settings)}
    text = json.dumps(variant, indent=1) + "\n"
    if (out / "run.json").exists():
        try:
            same = (json.loads((out / "run.json").read_text())["recipe"] == json.loads(text)["recipe"]
                    and FeatureParams.from_json((out / "features.json").read_text()) == params)
        except (OSError, ValueError, KeyError, TypeError, EdgeError):
            same = False
        if not same:
            raise EdgeError(f"--out {out}: holds another run; remove it or choose another folder")
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "features.json", (params.to_json() + "\n").encode())
    write_file(out / "run.json", text.encode())
    return out
