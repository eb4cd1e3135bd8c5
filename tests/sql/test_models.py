"""The dbt_like_sql folder as models: refs, sources and config read from each file, mistakes named by file."""

import pytest

from video_assets.sql.checks import CheckDefinitionError
from video_assets.sql.models import SqlModelError, load_models, model_named


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.sql": "select * from {{ ref('missing') }}"}, r"ref\(\) to unknown model"),
        ({"a.sql": "select * from {{ source('nope') }}"}, "unknown source"),
        ({"frames.sql": "select 1"}, "name of a source view"),
        ({"bad-name.sql": "select 1"}, "must be SQL identifiers"),
        ({"a.sql": "select 1", "a.yml": "checks:\n  nonsense: [x]\n"}, "unknown check kind"),
        ({"a.sql": "select 1", "a.yml": "checks: [unclosed"}, "not valid YAML"),
        ({"a.sql": "select 1", "a.yml": "materialized: snapshot\n"}, "materialized: 'snapshot'; use table, view or incremental"),
        ({"a.sql": "select 1", "a.yml": "tests:\n  unique: [x]\n"}, r"unknown key\(s\) \['tests'\]"),
    ],
)
def test_malformed_models_name_the_file(tmp_path, files, message) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises((SqlModelError, CheckDefinitionError), match=message) as raised:
        load_models(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_a_model_is_a_table_unless_its_config_makes_it_a_view(tmp_path) -> None:
    (tmp_path / "steps.sql").write_text("-- Per-frame steps.\nselect * from {{ source('frames') }}")
    (tmp_path / "steps.yml").write_text("materialized: view\n")
    (tmp_path / "hourly.sql").write_text("select count(*) as n from {{ ref('steps') }}")
    models = load_models(tmp_path)
    steps, hourly = model_named(models, "steps"), model_named(models, "hourly")
    assert (steps.materialized, steps.sources, steps.description) == ("view", ("frames",), "Per-frame steps.")
    assert (hourly.materialized, hourly.refs, hourly.sources) == ("table", ("steps",), ())
    with pytest.raises(SqlModelError, match=r"No SQL model named 'daily'; the models are \['hourly', 'steps'\]"):
        model_named(models, "daily")
