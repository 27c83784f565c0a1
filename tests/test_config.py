"""Config parsing and validation messages."""

import pytest

from genlab.config import build_config, parse_assignments, parse_value
from genlab.errors import InputError
from genlab.experiments.stability.stable_minima import StableMinimaConfig


def test_parse_values():
    assert parse_value("0.1") == 0.1
    assert parse_value("3") == 3
    assert parse_value("0.1,0.2") == [0.1, 0.2]
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("sine") == "sine"
    assert parse_assignments(["a=1", "b=x"]) == {"a": 1, "b": "x"}
    with pytest.raises(InputError, match="key=value"):
        parse_assignments(["novalue"])


def test_presets_and_overrides():
    c = build_config(StableMinimaConfig, "full", {"seed": 4})
    assert c.seed == 4 and len(c.step_sizes) >= 8
    c = build_config(StableMinimaConfig, "quick", {"step_sizes": [0.5, 0.1]})
    assert c.step_sizes == [0.1, 0.5]


@pytest.mark.parametrize(
    "overrides,pattern",
    [
        ({"bogus": 1}, "unknown key 'bogus'; allowed keys: .*width"),
        ({"width": 0}, "field 'width'"),
        ({"n": 1}, "field 'n'"),
        ({"n": "many"}, "field 'n'"),
        ({"step_sizes": [0.1, -0.2]}, "field 'step_sizes'.*> 0"),
        ({"ground_truth": "zigzag"}, "field 'ground_truth'.*'sine'"),
    ],
)
def test_bad_values_name_the_field(overrides, pattern):
    with pytest.raises(InputError, match=pattern):
        build_config(StableMinimaConfig, "quick", overrides)


def test_a_range_given_high_first_is_refused():
    """ntk-limit's slope_range must be (low, high): reversed, no verdict could ever pass."""
    from genlab.config import build_config
    from genlab.experiments import get_experiment

    with pytest.raises(InputError, match="slope_range"):
        build_config(get_experiment("ntk-limit").Config, "quick", {"slope_range": [0, -0.8]})
    assert build_config(get_experiment("ntk-limit").Config, "quick", {"slope_range": [-0.8, 0]}).slope_range == (-0.8, 0)
