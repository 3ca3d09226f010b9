"""Docstrings (reST / Google style, as torch writes them) to readable Markdown prose plus Python examples.

The prose keeps one block per paragraph, bullet, note and documented argument, so
the writer can quote the few blocks that matter. Examples come from doctest
(``>>>``) lines and ``::`` literal blocks, as code that ``ast.parse`` accepts.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field

_ROLE = re.compile(r":(?:[\w-]+:)?[\w-]+:`(~?)([^`]+)`")
_DOUBLE_TICK = re.compile(r"``(.+?)``")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^>]+)>`__?")
_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::\s*(.*)$")
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword [Aa]rgs|Keyword [Aa]rguments|Kwargs|Other [Pp]arameters|"
    r"Returns?|Return [Tt]ype|Yields?|Raises|Attributes|Shape|Note|Notes|Warning|Warnings|Example|Examples|"
    r"See [Aa]lso|References?|Methods|Tip)\s*:{1,2}\s*$"
)
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "kwargs",
                 "other parameters", "attributes", "raises", "shape", "methods"}
# (a type may hold parentheses of its own: "betas (`tuple(float, float)`, defaults to (0.9, 0.999)):")
_ITEM = re.compile(r"^\*{0,2}([\w.]+)\s*(?:\(((?:[^()]|\([^()]*\))*)\))?\s*:\s*(.*)$")
_BULLET = re.compile(r"^([*+-]|\d+[.)])\s+")
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->\s*.+)?$")
_ADMONITIONS = {"note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important", "caution": "Caution",
                "danger": "Danger", "attention": "Attention", "hint": "Hint", "seealso": "See also",
                "deprecated": "Deprecated", "versionadded": "New in version", "versionchanged": "Changed in version"}
_CODE_DIRECTIVES = {"code-block", "code", "testcode", "doctest", "sourcecode", "testsetup"}
MAX_OUTPUT_LINES = 3  # doctest output kept as comments, per output run


@dataclass
class ParsedDoc:
    blocks: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    deprecated: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(self.blocks)


# reST's escaped space glues a suffix to a word ("nn.Module\\ s" reads "nn.Modules"); a backtick or a math
# backslash after it is left alone (`hermitian`\\ `= True` would become a double backtick).
_GLUE = re.compile(r"(?<=[A-Za-z0-9_])\\ (?=[a-z])")


def _after_literals(text: str) -> str:
    """``x``\\s and `i`\\ th read "x"s and "i"th: the backslash (and escaped space) reST puts after a literal to glue a
    suffix to it goes, as does an escaped space between two words (spans paired left to right, so the backslash of
    `\\tanh` inside the next span stays)."""
    out, last = [], 0
    for span in re.finditer(r"`[^`]*`", text):
        end = span.end()
        out.append(_GLUE.sub("", text[last:span.start()]))
        out.append(text[span.start():end])
        last = end
        if text.startswith("\\ ", end) and end + 2 < len(text) and text[end + 2].isalpha():
            last = end + 2
        elif text.startswith("\\", end) and end + 1 < len(text) and (text[end + 1].isalnum() or text[end + 1] == "_"):
            last = end + 1
    return "".join(out) + _GLUE.sub("", text[last:])


def inline(text: str) -> str:
    """reST inline markup to Markdown: roles and double backticks become code spans."""
    text = _RST_LINK.sub(lambda m: f"[{m.group(1).strip()}]({m.group(2)})", text)
    # A reference to a target defined elsewhere (`Super-Convergence: ...`_) reads as its words.
    text = re.sub(r"(?<![`:\w])`([^`<>]+)`__?(?!\w)", r"\1", text)

    def role(m: re.Match) -> str:
        body = m.group(2)
        ref = re.match(r"^(.*?)\s*<([^>]+)>$", body)
        if ref:  # :ref:`text <target>` reads as its text
            return ref.group(1) or ref.group(2)
        if m.group(1):  # ~a.b.C shows as C
            body = body.rsplit(".", 1)[-1]
        return f"`{body}`"

    text = _ROLE.sub(role, text)
    text = _DOUBLE_TICK.sub(lambda m: f"`{m.group(1)}`", text)
    # reST's escapes after a literal (``param_group["lr"]``\s: a plural) and its citation references ([Henry2019]_)
    text = _after_literals(text)
    text = re.sub(r"(?<![\w\]])\[([A-Za-z0-9][\w.-]*)\]_(?=[\s.,;:)]|$)", r"[\1]", text)  # not '[host]_[pid]'
    text = re.sub(r"\s*#\s*noqa\b(:\s*[A-Z]+\d+)?", "", text)  # linter pragmas are not prose
    return re.sub(r"\s+", " ", text).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _take_indented(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """Lines from ``start`` indented deeper than ``base`` (blank lines included), and where they end."""
    out: list[str] = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) <= base:
            break
        out.append(line)
        i += 1
    while out and not out[-1].strip():
        out.pop()
    return out, i


def _dedent(lines: list[str]) -> list[str]:
    widths = [_indent(line) for line in lines if line.strip()]
    cut = min(widths) if widths else 0
    return [line[cut:] if line.strip() else "" for line in lines]


def join_lines(lines: list[str]) -> str:
    """A paragraph's lines as one line; a word the line break split after its hyphen ("all-" / "reduces") stays one."""
    out = ""
    for line in lines:
        out += line if re.search(r"[A-Za-z]-$", out) and line[:1].islower() else (" " + line if out else line)
    return out


_EXAMPLE_LEAD = re.compile(r"\s*\bExamples?::?\s*$")  # "... adjusting as needed. Example::" before the code it leads


# xdoctest's "+IGNORE_WANT("non deterministic")": the output under the next statement is not what every run prints.
_IGNORE_WANT = re.compile(r"#\s*x?doctest:.*\+IGNORE_WANT(?:\(\s*[\"']?([^\"')]*)[\"']?\s*\))?", re.I)


def doctest_to_python(lines: list[str]) -> str | None:
    """Doctest lines as a Python snippet: prompts stripped, output kept as (a few) comments; None if it won't parse."""
    code: list[str] = []
    in_source = False
    outputs = 0
    varies = None  # an IGNORE_WANT directive's reason: the next output shown is one of several a run may print
    for raw in _dedent(lines):
        line = raw.rstrip()
        if line.startswith(">>>"):
            source = line[4:] if line.startswith(">>> ") else line[3:]
            found = _IGNORE_WANT.search(source)
            if found:
                varies = found.group(1).strip() or "not checked"
            code.append(source)
            in_source, outputs = True, 0
        elif in_source and line.startswith("...") and (len(line) == 3 or line[3] == " "):
            code.append(line[4:] if len(line) > 3 else "")
        elif not line.strip():
            in_source = False
            if code and code[-1] != "":
                code.append("")
        else:
            in_source = False
            outputs += 1
            if outputs <= MAX_OUTPUT_LINES:
                code.append("# " + line.strip() + (f"  (one possible output: {varies})" if outputs == 1 and varies else ""))
            elif outputs == MAX_OUTPUT_LINES + 1:
                code.append("# ...")
            varies = None
    return _valid_python("\n".join(code))


def _valid_python(code: str) -> str | None:
    code = code.strip("\n")
    if not code.strip() or not any(ln.strip() and not ln.lstrip().startswith("#") for ln in code.splitlines()):
        return None
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    return code


def _literal_example(lines: list[str]) -> str | None:
    """A ``::`` literal block: a doctest, Python source, or (returns None) something that is not code."""
    body = _dedent(lines)
    if any(line.lstrip().startswith(">>>") for line in body):
        return doctest_to_python(body)
    code = _valid_python("\n".join(body))
    # Prose and ASCII art can parse as Python by accident (a lone name); demand code-like content.
    if code and re.search(r"[=()\[\]]|^\s*(import|from|def|class|for|with|if)\b", code, re.M):
        return code
    return None


def _inline_bullets(lines: list[str]) -> list[str]:
    """An argument item's own bullet list (torch.compile's `mode`: one bullet per mode) as clauses of one paragraph:
    "... or "max-autotune": "default" is ...; "reduce-overhead" is ...", not a run of " - " joins. Where the list, or
    a paragraph of the item, ends (a blank line) before more text, its last words end a sentence."""
    out: list[str] = []
    listed = broke = False
    for line in lines:
        if not line.strip():
            broke = bool(out)
            continue
        bullet = _BULLET.match(line) if out else None
        if bullet:
            if not re.search(r"[.:;,]$", out[-1]):
                out[-1] += ";" if listed else ":"
            listed = True
            line = line[bullet.end():]
        elif broke and (listed or line[:1].isupper()):
            # '... generation events' / 'For example, ...': one sentence ends where the next begins.
            if not re.search(r"[.:;,!?]$", out[-1]):
                out[-1] += "."
            listed = False
        broke = False
        out.append(line)
    return out


_TICKED_ITEM = re.compile(r"^`([A-Za-z_]\w*)`(?!`)\s+(\S.*)$")


class _Parser:
    def __init__(self, doc: str):
        self.lines = inspect.cleandoc(doc).expandtabs(4).splitlines()
        self.out = ParsedDoc()
        self.para: list[str] = []
        self.prose_indent = 0  # where the last paragraph of prose began: code sits deeper

    def flush(self) -> None:
        items = [n for n, line in enumerate(self.para) if _TICKED_ITEM.match(line)]
        names = {_TICKED_ITEM.match(self.para[n]).group(1) for n in items}
        # Three names or more, each once: "`fork` will return ... `fork` will not" is prose that wraps at a name.
        if len(items) >= 3 and items[0] == 0 and len(names) == len(items):
            # "`gateway` the url for your push gateway ...\n`job` is the job label ..." (prometheus_client): one
            # argument per line, each named in backticks, as an argument list is written elsewhere.
            for start, end in zip(items, [*items[1:], len(self.para)]):
                name, said = _TICKED_ITEM.match(self.para[start]).groups()
                self.out.blocks.append(f"- `{name}`: {inline(join_lines([said, *self.para[start + 1:end]]))}")
            self.para = []
        if self.para:
            text = inline(join_lines(self.para))
            if text:
                self.out.blocks.append(text)
            self.para = []

    def example(self, code: str | None) -> None:
        if code and code not in self.out.examples:
            self.out.examples.append(code)

    def parse(self) -> ParsedDoc:
        lines = self.lines
        i = 0
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            ind = _indent(line)
            if not stripped:
                self.flush()
                i += 1
                continue
            if stripped.startswith(">>>"):
                self.flush()
                i = self._doctest(i, ind)
                continue
            directive = _DIRECTIVE.match(stripped)
            if directive:
                self.flush()
                body, i = _take_indented(lines, i + 1, ind)
                if directive.group(1).lower() in _CODE_DIRECTIVES and not any(b.strip() for b in body):
                    # deepspeed writes the code under its directive unindented: it runs to a blank line or a section.
                    while i < len(lines) and lines[i].strip() and not _SECTION.match(lines[i].strip()):
                        body.append(lines[i])
                        i += 1
                self._directive(directive.group(1).lower(), directive.group(2), body)
                continue
            if stripped.startswith(".. "):  # a label (.. _name:) or a comment
                self.flush()
                _, i = _take_indented(lines, i + 1, ind)
                continue
            section = _SECTION.match(stripped)
            if section and not self.para:
                body, i = _take_indented(lines, i + 1, ind)
                self._section(section.group(1).lower(), body, literal=stripped.endswith("::"))
                continue
            # A section underline (numpy's ----, or any RST adornment: torchrun's ++++): the line above was a heading.
            if re.fullmatch(r"([-=~^+*#\"'`_])\1{2,}", stripped):
                if self.para:
                    heading = " ".join(self.para)
                    self.para = []
                    self.out.blocks.append(f"**{inline(heading)}**")
                i += 1
                continue
            if stripped.endswith("::"):
                text = stripped[:-2].rstrip()
                self.para.append(text + ":" if text and not text.endswith(":") else text)
                body, i = _take_indented(lines, i + 1, ind)
                code = _literal_example(body)
                intro = " ".join(self.para)
                if code and len(intro) < 100:
                    self.para = []  # "Example 1: ..." only introduces code that is shown elsewhere
                self.flush()
                self.example(code)
                continue
            # Code indented under the prose without a "::" (prometheus_client's Gauge: "from prometheus_client import
            # Gauge" four spaces in, after a blank line), as Markdown writes it: an example, not a paragraph.
            # ... or right under the line that leads into it ("Example usage:" then the code, one level in).
            lead = bool(self.para) and self.para[-1].endswith(":") and ind > _indent(lines[i - 1])
            if (lead or (not self.para and ind > self.prose_indent)) and not _BULLET.match(stripped):
                body, end = _take_indented(lines, i, _indent(lines[i - 1]) if lead else self.prose_indent)
                code = _literal_example(body)
                # ... a program, not an expression a sentence set apart ("quant1 - [dequant1 - ...] - dequant2")
                if code and any(not isinstance(node, ast.Expr) for node in ast.parse(code).body):
                    if lead and len(" ".join(self.para)) < 100:
                        self.para = []  # "Example usage:" only introduces the code, as before a "::" block
                    self.flush()
                    self.example(code)
                    i = end
                    continue
            if _BULLET.match(stripped):
                self.flush()
            elif not self.para:
                self.prose_indent = ind
            self.para.append(stripped)
            i += 1
        self.flush()
        first = " ".join(self.out.blocks[:2]).lower()
        self.out.deprecated = self.out.deprecated or bool(re.search(r"\bdeprecated\b", first))
        return self.out

    def _doctest(self, i: int, ind: int) -> int:
        lines = self.lines
        chunk: list[str] = []
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
                if nxt is None or _indent(lines[nxt]) != ind or not lines[nxt].strip().startswith(">>>"):
                    break
            elif _indent(line) < ind:
                break
            chunk.append(line)
            i += 1
        commands = [ln.strip()[4:] for ln in chunk if ln.strip().startswith(">>> ")]
        if commands and all(c.startswith("$ ") for c in commands):
            # A shell command written with doctest prompts (">>> $ nvprof --profile-from-start off ..."): no Python
            # example, but text the paragraphs around it explain, so it stays with the one that leads into it.
            said = " ".join(f"`{c}`" for c in commands)
            if self.out.blocks and self.out.blocks[-1].endswith(":"):
                self.out.blocks[-1] += f" {said}"
            else:
                self.out.blocks.append(said)
            return i
        self.example(doctest_to_python(chunk))
        return i

    def _directive(self, name: str, arg: str, body: list[str]) -> None:
        if name in _CODE_DIRECTIVES:
            self.example(_literal_example(body) if name != "testsetup" else None)
            return
        label = _ADMONITIONS.get(name)
        if label is None:
            return  # math, image, autosummary, raw...: nothing a reader can quote
        if name == "deprecated":
            self.out.deprecated = True
        sub = _Parser("\n".join(_dedent(body))).parse() if body else ParsedDoc()
        for code in sub.examples:
            self.example(code)
        text = " ".join(sub.blocks)
        if name in ("versionadded", "versionchanged", "deprecated") and arg:
            head = f"**{label} {arg.strip()}:**" if name != "deprecated" else f"**Deprecated since {arg.strip()}:**"
        else:
            head = f"**{label}:**"
            if arg:
                text = inline(arg) + " " + text
        if text.strip() or name.startswith("version"):
            self.out.blocks.append(f"{head} {text}".strip())

    def _section(self, name: str, body: list[str], literal: bool) -> None:
        body = _dedent(body)
        if name in ("example", "examples"):
            if literal:  # "Example::" introduces one literal block: code, never prose
                self.example(_literal_example(body))
                return
            sub = _Parser("\n".join(body)).parse()
            for code in sub.examples:
                self.example(code)
            self.out.blocks.extend(sub.blocks)
            return
        if name in _ARG_SECTIONS:
            label = "Raises" if name == "raises" else ("Shape" if name == "shape" else None)
            for lines in self._items(body):
                # An argument's own example ("Example::" then doctest lines, FSDP's auto_wrap_policy) is code: an
                # example of the doc, never words of the argument's item.
                cut = next((n for n, line in enumerate(lines) if line.strip().startswith(">>>")), len(lines))
                code = doctest_to_python(lines[cut:]) if cut < len(lines) else None
                item = _EXAMPLE_LEAD.sub("", join_lines(_inline_bullets([line.strip() for line in lines[:cut]])))
                if code:
                    self.example(code)
                match = _ITEM.match(item)
                if match and name not in ("shape",):
                    kind = f" ({match.group(2).strip()})" if match.group(2) else ""
                    text = f"- `{match.group(1)}`{kind}: {inline(match.group(3))}"
                else:
                    text = "- " + inline(_BULLET.sub("", item))
                self.out.blocks.append(f"{text} ({label})" if label and not match else text)
            return
        sub = _Parser("\n".join(body)).parse()
        for code in sub.examples:
            self.example(code)
        text = " ".join(sub.blocks)
        if text:
            title = {"returns": "Returns", "return": "Returns", "return type": "Return type", "yields": "Yields",
                     "yield": "Yields", "notes": "Note", "warnings": "Warning", "see also": "See also",
                     "reference": "References", "references": "References"}.get(name, name.capitalize())
            self.out.blocks.append(f"**{title}:** {text}")

    @staticmethod
    def _items(body: list[str]) -> list[list[str]]:
        """Argument items, as their lines: a line at the body's own indent starts one, deeper lines continue it."""
        items: list[list[str]] = []
        for line in body:
            if not line.strip():
                if items and items[-1][-1]:
                    items[-1].append("")  # kept: where an item's own list ends (_inline_bullets)
                continue
            if _indent(line) == 0 or not items:
                items.append([line.strip()])
            else:
                items[-1].append(line)
        for item in items:
            while item and not item[-1]:
                item.pop()
        return items


def parse_docstring(doc: str) -> ParsedDoc:
    """Split a docstring into quotable Markdown blocks and Python examples."""
    lines = doc.splitlines()
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is not None and first + 1 < len(lines) and lines[first + 1].strip() and _SIGNATURE.match(lines[first].strip()):
        # A signature line with the summary right under it (Tensor.type): two blocks, not one paragraph.
        doc = "\n".join([*lines[:first + 1], "", *lines[first + 1:]])
    parsed = _Parser(doc).parse()
    if parsed.blocks and _SIGNATURE.match(parsed.blocks[0].replace("`", "")) and len(parsed.blocks[0]) < 400:
        # torch's C functions open with their signature: show it as code, not prose.
        parsed.blocks[0] = f"`{parsed.blocks[0].replace('`', '')}`"
    return parsed
