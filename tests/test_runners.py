"""Runner definitions: runners/*.md front matter + jinja2 prompt, validated with file and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import ConfigError
from kb.runners import builtin_runner, load_runner, load_runners, parse_runner
from kb.workspace import init_workspace
from offline_fixtures import demo_plan

REPO = Path(__file__).resolve().parents[1]
GOOD = """---
name: writer
description: Writes one knowledge file.
model: inherit   # the model in kb.toml
temperature: 0.2
tools: Read, Grep
color: blue
---
Write PART {{ part.number }}: {{ part.title }}.
"""


def test_a_good_definition():
    runner = parse_runner(GOOD, "runners/writer.md")
    assert (runner.name, runner.model, runner.temperature, runner.tools) == ("writer", None, 0.2, ["Read", "Grep"])
    assert runner.extra == {"color": "blue"}
    assert runner.render(part=demo_plan().part(1)) == "Write PART 1: Activation Checkpointing.\n"
    with pytest.raises(ConfigError, match="cannot render"):
        runner.render()


@pytest.mark.parametrize("change, reason", [
    (lambda t: t.replace("name: writer", "name: Writer Bot"), "'name' must be a lowercase identifier"),
    (lambda t: t.replace("description: Writes one knowledge file.\n", ""), "'description' is missing"),
    (lambda t: t.replace("temperature: 0.2", "temperature: hot"), "'temperature' must be a number from 0 to 2"),
    (lambda t: t.replace("temperature: 0.2", "temperature: 3"), "'temperature' must be a number from 0 to 2"),
    (lambda t: t.replace("tools: Read, Grep", "tools: {a: 1}"), "'tools' must be a list"),
    (lambda t: t.replace("model: inherit", "model: [a]"), "'model' must be a model name"),
    (lambda t: t.replace("{{ part.title }}", "{% if part %}"), r"line 1: jinja2 syntax error"),
    (lambda t: t.split("---\nWrite")[0] + "---\n\n", "the prompt .* is empty"),
    (lambda t: t.replace("---\nname", "name", 1), "no YAML front matter"),
    (lambda t: t.replace("tools: Read, Grep", "tools: [unclosed"), "front matter is not valid YAML"),
])
def test_bad_definitions_name_file_and_reason(tmp_path, change, reason):
    path = tmp_path / "writer.md"
    path.write_text(change(GOOD))
    with pytest.raises(ConfigError, match=f"^{path}: {reason}"):
        load_runner(path)


def test_shipped_runners_are_valid_and_the_same_in_repo_and_skeleton():
    skeleton = REPO / "kb" / "templates" / "workspace" / "runners"
    for name in ("writer.md", "researcher.md", "knowledge-file.md.j2"):
        assert (REPO / "runners" / name).read_bytes() == (skeleton / name).read_bytes(), name
    runners = load_runners(REPO / "runners")
    assert {"writer", "researcher"} <= set(runners)
    assert builtin_runner("researcher").tools == ["search", "fetch"]
    part = demo_plan().part(1)  # the researcher asks one section's questions at a time
    prompt = runners["researcher"].render(part=part, section=part.sections[2], plan_title="Training Tricks", n=3,
                                          perspectives=["the reference docs"], found=[], follow_up=False)
    assert 'section 3 ("DALI pipelines")' in prompt and "NVIDIA data loading library" in prompt


def test_workspace_runners_fill_gaps_and_refuse_duplicates_and_broken_layouts(tmp_path):
    ws, created = init_workspace(tmp_path / "ws")
    assert {"runners/writer.md", "runners/researcher.md", "runners/knowledge-file.md.j2"} <= set(created)
    (ws.runners_dir / "researcher.md").unlink()
    runners = load_runners(ws.runners_dir)
    assert runners["researcher"].path == "kb's built-in runners/researcher.md"
    assert runners["writer"].path == str(ws.runners_dir / "writer.md")
    (ws.runners_dir / "editor.md").write_text(GOOD)  # a second file claiming the name "writer"
    with pytest.raises(ConfigError, match="already used by"):
        load_runners(ws.runners_dir)
    (ws.runners_dir / "editor.md").unlink()
    (ws.runners_dir / "knowledge-file.md.j2").write_text("{{ oops ")
    with pytest.raises(ConfigError, match="knowledge-file.md.j2: line 1: jinja2 syntax error"):
        load_runners(ws.runners_dir)
