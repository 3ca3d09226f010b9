"""[corpus].include: private-named but documented modules and objects, and config options documented by comments."""

from __future__ import annotations

import sys

import pytest

from kb.config import load_config
from kb.corpus.docstrings import extract_in_subprocess
from kb.corpus.index import gather_inputs
from kb.corpus.options import SOURCE_SUFFIX
from kb.errors import ConfigError
from kb.workspace import init_workspace, open_workspace
from offline_fixtures import write_demo_package


@pytest.fixture
def demo_package(tmp_path, monkeypatch):
    write_demo_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    return tmp_path


def test_included_private_paths_are_indexed_and_nothing_else(demo_package, tmp_path):
    docs = {d.locator: d for d in extract_in_subprocess(
        "kbdemo", tmp_path / "out.jsonl", budget_s=20, include=["kbdemo._private.secret", "kbdemo._config"])}
    assert "kbdemo._private.secret" in docs  # an object named explicitly
    assert "kbdemo._private" not in docs  # ... not its whole module
    assert "kbdemo.recompute" in docs and not any(".tests" in loc for loc in docs)  # the public walk is unchanged
    option = docs["kbdemo._config.fuse_kernels"]
    assert option.text == "`fuse_kernels = True`\n\nfuse pointwise kernels into their consumers"
    assert option.source.endswith(SOURCE_SUFFIX)
    graphs = docs["kbdemo._config.gpu.graphs"]  # an option of a config class
    assert graphs.text.startswith('`gpu.graphs = os.environ.get("KBDEMO_GRAPHS") == "1"`')
    assert "capture the generated kernels in CUDA graphs" in graphs.text
    # No comment, or a TODO, documents nothing.
    assert "kbdemo._config.no_comment_option" not in docs and "kbdemo._config.old_flag" not in docs


def test_without_include_private_paths_stay_out(demo_package, tmp_path):
    docs = {d.locator for d in extract_in_subprocess("kbdemo", tmp_path / "out.jsonl", budget_s=20)}
    assert not any("._" in loc for loc in docs)


def test_include_is_validated_and_keys_each_package_cache(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    toml = ws.root / "kb.toml"
    text = toml.read_text()
    assert "include = [" in text  # the template documents the key
    toml.write_text(text.replace('include = [', 'include = ["torch.cuda..x", ', 1))
    with pytest.raises(ConfigError, match="dotted"):
        load_config(toml)
    toml.write_text(text.replace('include = [', 'include = ["kbdemo._config", ', 1))
    ws = open_workspace(ws.root)
    assert ws.config.corpus.include[:2] == ["kbdemo._config", "torch._dynamo"]
    # Each package's docstring cache is keyed by the includes inside it; the others are not its business.
    for pkg in gather_inputs(ws).packages:
        assert pkg["include"] == [p for p in ws.config.corpus.include if p.startswith(pkg["name"] + ".")]
