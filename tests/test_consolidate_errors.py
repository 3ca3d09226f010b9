"""Broken knowledge files are errors, not one warning among many (issue 25 item 16): front
matter never closed, bytes that are not UTF-8, front matter that is not YAML. They are listed
at the end of the run and in --json (exit 1), --strict refuses them before writing anything,
and the YAML error's line numbers are the file's, as kb report gives them."""

from __future__ import annotations

import json
import re

from conftest import run_kb
from kb.consolidate import consolidate
from kb.records import read_drop
from test_consolidate_support import add_part, commits, make_workspace

UNCLOSED = "---\ntitle: Unclosed\nplan: plans/p.md\n\n# Unclosed\n\nBody.\n"
NOT_UTF8 = "# Café\n\nBody.\n".encode("utf-8").replace("é".encode("utf-8"), b"\xe9")
NOT_YAML = "---\ntitle: [unclosed\nplan: x\n---\n# Not YAML\n\nBody.\n"


def broken_workspace(tmp_path, git=True):
    ws = make_workspace(tmp_path, git=git)
    add_part(ws, "io/00-fine.md", "Fine", 1, plan="plans/p.md", part=1)
    (ws.knowledge_dir / "io" / "01-unclosed.md").write_text(UNCLOSED)
    (ws.knowledge_dir / "io" / "02-bytes.md").write_bytes(NOT_UTF8)
    (ws.knowledge_dir / "io" / "03-yaml.md").write_text(NOT_YAML)
    return ws


def test_broken_files_are_errors_in_json_and_exit_1_but_are_committed(tmp_path):
    ws = broken_workspace(tmp_path)
    done = run_kb("consolidate", "--json", cwd=ws.root)
    assert done.code == 1, done.err
    data = json.loads(done.out)
    errors = {e["path"]: e["message"] for e in data["errors"]}
    assert sorted(errors) == ["knowledge/io/01-unclosed.md", "knowledge/io/02-bytes.md", "knowledge/io/03-yaml.md"]
    assert errors["knowledge/io/01-unclosed.md"].startswith("knowledge/io/01-unclosed.md:1: the front matter opened on line 1 is never closed")
    assert errors["knowledge/io/02-bytes.md"].startswith("knowledge/io/02-bytes.md:1: not valid UTF-8 (byte 0xe9)")
    assert "line 2, column 8" in errors["knowledge/io/03-yaml.md"]
    assert all(e["kind"] == "broken-file" for e in data["errors"])
    assert data["commit"] is not None and len(commits(ws.root)) == 1  # indexed as well as they could be
    again = run_kb("consolidate", "--json", cwd=ws.root)
    assert again.code == 1 and json.loads(again.out)["nothing_to_consolidate"]
    assert json.loads(again.out)["errors"] == data["errors"]  # they still stand


def test_errors_come_last_on_stderr(tmp_path):
    ws = broken_workspace(tmp_path)
    done = run_kb("consolidate", cwd=ws.root)
    assert done.code == 1, done.err
    assert "Committed " in done.out
    tail = done.err[done.err.index("3 errors"):]
    assert "--strict" in tail.splitlines()[0]
    assert [line.strip().split(":", 1)[0] for line in tail.splitlines()[1:]] == [
        "knowledge/io/01-unclosed.md", "knowledge/io/02-bytes.md", "knowledge/io/03-yaml.md"]
    again = run_kb("consolidate", cwd=ws.root)
    assert again.code == 1 and "Nothing to consolidate" in again.out and "3 errors still stand" in again.err


def test_strict_refuses_broken_files_before_writing_anything(tmp_path):
    ws = broken_workspace(tmp_path)
    index = ws.index_path.read_bytes()
    refused = run_kb("consolidate", "--strict", cwd=ws.root)
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1, refused.err
    assert "3 broken knowledge files" in refused.err and "knowledge/io/01-unclosed.md:1" in refused.err
    assert "nothing was written" in refused.err
    assert commits(ws.root) == [] and ws.index_path.read_bytes() == index
    assert read_drop(next(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))).consolidated is None
    # Without --strict the run goes on; with it again, the errors saved by that run still refuse.
    assert consolidate(ws).errors
    assert run_kb("consolidate", "--strict", cwd=ws.root).code == 2
    for name in ("01-unclosed.md", "02-bytes.md", "03-yaml.md"):
        (ws.knowledge_dir / "io" / name).unlink()
    fixed = run_kb("consolidate", "--strict", cwd=ws.root)
    assert fixed.code == 0, fixed.err


def test_a_clean_tree_has_no_errors(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "io/00-fine.md", "Fine", 1, plan="plans/p.md", part=1)
    (ws.knowledge_dir / "io" / "01-old.md").write_text("# Old\n\n---\n\nA rule above, no front matter.\n")
    (ws.knowledge_dir / "io" / "02-empty.md").write_text("---\n---\n# Empty front matter\n")
    result = consolidate(ws, commit=False)
    assert result.errors == [] and result.to_dict()["errors"] == []


def test_yaml_error_lines_agree_with_kb_report(tmp_path):
    ws = broken_workspace(tmp_path, git=False)
    data = json.loads(run_kb("consolidate", "--write-only", "--json", cwd=ws.root).out)
    ours = next(e["message"] for e in data["errors"] if e["path"] == "knowledge/io/03-yaml.md")
    warning = next(w["message"] for w in data["warnings"] if w["path"] == "knowledge/io/03-yaml.md" and w["kind"] == "unreadable")
    report = json.loads(run_kb("report", "--json", cwd=ws.root).out)
    theirs = next(f["error"] for f in report["files"] if f["file"] == "knowledge/io/03-yaml.md")
    marks = re.compile(r"line (\d+), column (\d+)")
    assert marks.findall(ours) == marks.findall(theirs) == marks.findall(warning) == [("2", "8"), ("3", "5")]
    assert NOT_YAML.splitlines()[1][7] == "["  # line 2, column 8 of the file: where the flow sequence opens
