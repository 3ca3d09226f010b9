"""The shipped corpus reproduces: every package kb.toml indexes is installable the way CI installs it, pinned."""

from __future__ import annotations

import re
import sys
import tomllib

from conftest import REPO


def test_every_shipped_corpus_package_is_in_the_corpus_extra_pinned_and_installed_by_ci():
    packages = tomllib.loads((REPO / "kb.toml").read_text(encoding="utf-8"))["corpus"]["packages"]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    corpus_extra = {re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower() for req in extras["corpus"]}
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "constraints.txt").read_text(encoding="utf-8")))
    for package in packages:
        if package in sys.stdlib_module_names:
            continue
        if package == "torch":  # a dependency of kb itself
            assert "torch" in pins
            continue
        assert package in corpus_extra, f"{package} is indexed but the corpus extra does not install it"
        assert package in pins, f"{package} is not pinned in constraints.txt: the shipped base would not reproduce"
    assert corpus_extra <= set(packages), "the corpus extra installs a package kb.toml does not index"
    assert "-e '.[corpus]'" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
