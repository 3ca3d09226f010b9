"""The README's corpus paragraph shows a [corpus] table that kb accepts, and the index reads its folders."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO
from kb.config import CorpusConfig

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readmes_corpus_example_is_a_valid_corpus_table():
    blocks = [b for b in re.findall(r"```toml\n(.*?)\n```", README, re.S) if b.lstrip().startswith("[corpus]")]
    assert len(blocks) == 1, "the README shows one [corpus] example"
    corpus = CorpusConfig(**tomllib.loads(blocks[0])["corpus"])
    assert corpus.folders and corpus.packages and corpus.include
    assert all(path.split(".", 1)[0] in corpus.packages for path in corpus.include)
    # The paragraph says how to add both kinds of source, and where the packages must be installed.
    start = README.index("What the offline engine can quote")
    paragraph = README[start:README.index(blocks[0]) + len(blocks[0]) + 400]
    assert "kb init --plan" in paragraph and "must be installed where kb runs" in paragraph
