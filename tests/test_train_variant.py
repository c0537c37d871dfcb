"""Variations of a recipe (``train/variant.py``): settings parsed, typed and applied, folders kept apart."""

from __future__ import annotations

import json

import pytest

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.train.fit import Recipe
from audiomnist_edge.train.variant import apply_settings, parse_setting, write_variant


def test_settings_reach_recipe_augmentation_and_features() -> None:
    recipe, params = apply_settings(Recipe(), FeatureParams(), [
        "label_smoothing=0.1", "seed=3", "augment.edge_cut=0.15", "augment.speed=[0.9, 1.1]",
        "augment.capture_floor_snr_db=null", "features.n_mfcc=40", "model_kwargs={\"width\": 56}",
        "label_smoothing=0.2"])
    assert (recipe.label_smoothing, recipe.seed, recipe.model_kwargs) == (0.2, 3, {"width": 56})  # last one wins
    assert recipe.augment.edge_cut == 0.15 and recipe.augment.speed == (0.9, 1.1)
    assert recipe.augment.capture_floor_snr_db is None and recipe.augment.copies == Recipe().augment.copies
    assert params.n_mfcc == 40 and params.input_shape == (101, 40) and params.n_mels == FeatureParams().n_mels
    assert apply_settings(Recipe(), FeatureParams(), []) == (Recipe(), FeatureParams())


def test_raw_columns_are_set_as_json_lists() -> None:
    mean, std = [-200.0] + [0.0] * 19, [50.0] + [5] * 19
    _, params = apply_settings(Recipe(), FeatureParams(), [f"features.raw_mean={mean}", f"features.raw_std={std}"])
    assert params.raw_mean == tuple(mean) and params.raw_std == tuple(std) and params.input_shape == (101, 40)
    with pytest.raises(EdgeError, match="go together"):
        apply_settings(Recipe(), FeatureParams(), [f"features.raw_mean={mean}"])


def test_the_split_keeps_its_seed_when_only_the_training_seed_changes() -> None:
    assert Recipe().splitting_seed == 0 and Recipe(seed=2).splitting_seed == 2
    assert Recipe(seed=2, split_seed=0).splitting_seed == 0
    old = {k: v for k, v in Recipe(seed=3).to_dict().items() if k != "split_seed"}  # a run from before the field
    assert Recipe.from_dict(old).splitting_seed == 3
    recipe, _ = apply_settings(Recipe(), FeatureParams(), ["seed=1", "split_seed=0"])
    assert (recipe.seed, recipe.splitting_seed) == (1, 0)


def test_values_are_json_or_else_text() -> None:
    assert parse_setting("arch=cnn") == ("arch", "cnn")
    assert parse_setting(" mixup =0.3") == ("mixup", 0.3)
    assert parse_setting("synth=[\"a\", \"b\"]") == ("synth", ["a", "b"])


@pytest.mark.parametrize("setting, message", [
    ("label_smoothing", "expected KEY=VALUE"),
    ("=1", "expected KEY=VALUE"),
    ("label_smothing=0.1", "no such setting"),
    ("augment=1", "no such setting"),
    ("augment.nope=1", "no such setting"),
    ("features.nope=1", "no such setting"),
    ("model.width=56", "no such setting"),
    ("epochs=0.5", "expected a value like 40"),
    ("epochs=true", "expected a value like 40"),
    ("label_smoothing=\"x\"", "expected a value like 0.0"),
    ("label_smoothing=NaN", "expected a value like 0.0"),
    ("augment.speed=[1.0]", "expected a value like [0.85, 1.15]"),
    ("features.cmvn=1", "expected a value like true"),
    ("features.n_mfcc=null", "expected a value like 20"),
    ("features.n_mfcc=0", "--set"),
])
def test_bad_settings_are_refused(setting, message) -> None:
    with pytest.raises(EdgeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_settings(Recipe(), FeatureParams(), [setting])


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    info = {"data": ["/corpus"], "layout": "fsdd", "split": "official", "fold": None, "seed": 0,
            "recipe": Recipe(epochs=7).to_dict(), "history": {"loss": [1.0]}, "labels": ["0", "1"]}
    (run / "run.json").write_text(json.dumps(info))
    (run / "features.json").write_text(FeatureParams().to_json())
    return run


def test_a_variation_folder_holds_the_changed_recipe_only(run_dir, tmp_path) -> None:
    out = write_variant(run_dir, tmp_path / "var", ["seed=2", "features.n_mfcc=13"])
    info = json.loads((out / "run.json").read_text())
    assert info["recipe"]["seed"] == info["seed"] == 2 and info["recipe"]["epochs"] == 7
    assert (info["data"], info["split"], info["variant_of"]) == (["/corpus"], "official", str(run_dir))
    assert "history" not in info and "labels" not in info  # they describe the run's trained model
    assert FeatureParams.from_json((out / "features.json").read_text()).n_mfcc == 13
    # the same variation again keeps the folder (a second sitting of its folds); another one is refused
    assert write_variant(run_dir, out, ["seed=2", "features.n_mfcc=13"]) == out
    with pytest.raises(EdgeError, match="holds another run"):
        write_variant(run_dir, out, ["seed=3"])
    with pytest.raises(EdgeError, match="holds another run"):
        write_variant(run_dir, out, ["seed=2"])  # same recipe, other features
    with pytest.raises(EdgeError, match="a folder of its own"):
        write_variant(run_dir, run_dir, ["seed=3"])
    assert json.loads((out / "run.json").read_text())["recipe"]["seed"] == 2


def test_folds_written_before_split_seed_still_add_up(tmp_path) -> None:
    """A folds.json whose recipe has no split_seed (written before the field) keeps its rows for --only."""
    from audiomnist_edge.train.evaluate import _earlier_folds
    from audiomnist_edge.train.fit import data_paths

    recipe, params, data = Recipe(), FeatureParams(), [str(tmp_path)]
    old_recipe = {k: v for k, v in recipe.to_dict().items() if k != "split_seed"}
    rows = [{"fold": 0, "accuracy": 0.9}, {"fold": 1, "accuracy": 0.8}]
    folds = {"recipe": old_recipe, "features": params.to_dict(), "data": data_paths(data), "folds": rows}
    (tmp_path / "folds.json").write_text(json.dumps(folds))
    assert _earlier_folds(tmp_path, recipe, params, data, False, keep_out=[1]) == (rows[:1], [])
    assert _earlier_folds(tmp_path, Recipe(seed=1), params, data, False, keep_out=[1]) == ([], [])


def test_a_sitting_with_condition_tables_names_the_folds_it_leaves_out(tmp_path) -> None:
    """Fold 1 scored without condition tables cannot join fold 0's table: it is named, not lost silently."""
    from audiomnist_edge.train.evaluate import _earlier_folds
    from audiomnist_edge.train.fit import data_paths

    recipe, params, data = Recipe(), FeatureParams(), [str(tmp_path)]
    rows = [{"fold": 1, "accuracy": 0.96}, {"fold": 2, "accuracy": 0.97, "conditions": {}}]
    folds = {"recipe": recipe.to_dict(), "features": params.to_dict(), "data": data_paths(data), "folds": rows}
    (tmp_path / "folds.json").write_text(json.dumps(folds))
    assert _earlier_folds(tmp_path, recipe, params, data, True, keep_out=[0]) == (rows[1:], [1])
    assert _earlier_folds(tmp_path, recipe, params, data, False, keep_out=[0]) == (rows[:1], [2])
