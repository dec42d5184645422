from lbdata.records import drifted_schemas, json_schemas
from lbdata.resources import resource_dir


def test_schemas_in_sync_with_records():
    assert drifted_schemas(resource_dir("schemas")) == [], "run `lbdata schemas` to regenerate"


def test_drift_is_detected(tmp_path):
    for name, text in json_schemas().items():
        (tmp_path / name).write_text(text)
    assert drifted_schemas(tmp_path) == []
    (tmp_path / "Trace.schema.json").write_text("{}")
    (tmp_path / "Verdict.schema.json").unlink()
    assert sorted(drifted_schemas(tmp_path)) == ["Trace.schema.json", "Verdict.schema.json"]
