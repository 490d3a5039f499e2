import json
import os

import pytest

from generators.errors import SelfAlignError
from generators.models import DONE_MARKER, check_model_dir, prepare_default_model, resolve_model


def test_missing_path_names_it():
    with pytest.raises(SelfAlignError, match=r"model '/nonexistent/model': no such folder"):
        resolve_model("/nonexistent/model")


def test_model_id_not_in_cache_says_so():
    with pytest.raises(SelfAlignError, match="not in the local Hugging Face cache"):
        resolve_model("acme/does-not-exist-7b")


def test_a_file_is_not_a_model(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(SelfAlignError, match="is a file, not a model folder"):
        resolve_model(str(f))


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, "config.json is missing"),
        ({"config.json": "{not json"}, "config.json is corrupt"),
        ({"config.json": "{}"}, "no weights"),
        ({"config.json": "{}", "model.safetensors": "x"}, "no tokenizer files"),
    ],
)
def test_corrupt_folder_is_named(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SelfAlignError, match=message) as err:
        check_model_dir(tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.slow
def test_default_model_is_converted_once(default_model):
    path, converted = prepare_default_model()
    assert not converted and str(path) == default_model.path
    marker = path / DONE_MARKER
    before = os.stat(marker).st_mtime_ns
    assert prepare_default_model() == (path, False)
    assert os.stat(marker).st_mtime_ns == before
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama" and config.get("quantization_config") is None
    assert any(path.glob("*.safetensors")) and (path / "tokenizer.json").is_file()
    assert resolve_model(str(path)).path == default_model.path  # a folder works like any other
