"""Validator profiles (validators/<name>.toml): interpreter, warm imports, limits, what is satisfiable."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kb.errors import ConfigError

# Each snippet's own empty /dev/shm hides what is there (grants under /tmp and /var/tmp are bound back
# over its private /tmp: kb.snippets.sandbox.confine.private_scratch).
PRIVATE_TO_SNIPPETS = ("/dev/shm",)
SATISFIABLE = Literal["cuda", "multi-gpu", "network", "distributed"]


class Profile(BaseModel):
    """One validator profile; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    interpreter: str = ""  # "" = the Python running kb
    preimport: list[str] = Field(default_factory=lambda: ["torch"])
    timeout_s: float = Field(60.0, gt=0)
    memory_limit_mb: int = Field(4096, ge=0)  # 0 = none; never applied to CUDA snippets (CUDA maps a huge address space)
    max_processes: int = Field(128, ge=8)  # threads count too
    max_file_mb: int = Field(1024, ge=1)
    parallel: int | Literal["auto"] = "auto"  # concurrent CPU snippets
    threads_per_snippet: int | Literal["auto"] = "auto"
    satisfies: list[SATISFIABLE] = Field(default_factory=list)
    sandbox_uid: int = Field(61000, ge=1)  # when kb runs as root, snippets run as uid sandbox_uid + slot
    tail_chars: int = Field(2000, ge=100)
    # What the sandbox lets in: paths shown read-only (a dataset folder), environment variables
    # passed through (NAME or PREFIX*: CUDA_*, TORCH_*; never one named like a secret), and the
    # size of each snippet's private tmpfs (cwd, HOME, TMPDIR, /tmp, /var/tmp, /dev/shm together).
    readable: list[str] = Field(default_factory=list)
    pass_env: list[str] = Field(default_factory=list)
    scratch_mb: int = Field(1024, ge=16)

    @field_validator("readable")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not os.path.isabs(path) or os.path.normpath(path) == "/":
                raise ValueError(f"{path!r} is not an absolute path below / (readable grants one folder or file)")
            if any(os.path.normpath(path) == t or os.path.normpath(path).startswith(t + "/") for t in PRIVATE_TO_SNIPPETS):
                raise ValueError(f"{path!r}: each snippet gets its own empty /dev/shm, which hides it; grant a folder elsewhere")
        return paths

    @field_validator("pass_env")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.rstrip("*") or not name.rstrip("*").replace("_", "").isalnum():
                raise ValueError(f"{name!r} is not a variable name or a PREFIX*")
        return names

    def sandbox_settings(self) -> dict:
        """The WorkerConfig fields this profile decides about the sandbox."""
        return {"pass_env": list(self.pass_env), "readable": list(self.readable), "scratch_mb": self.scratch_mb}

    def python(self) -> str:
        return self.interpreter or sys.executable

    def slots(self) -> int:
        return max(1, os.cpu_count() or 1) if self.parallel == "auto" else max(1, self.parallel)

    def threads(self) -> int:
        if self.threads_per_snippet != "auto":
            return max(1, self.threads_per_snippet)
        return max(1, (os.cpu_count() or 1) // self.slots())

    def digest(self) -> str:
        """Short hash of the settings that can change a result."""
        data = self.model_dump(exclude={"description", "parallel", "tail_chars"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _packaged(name: str) -> str | None:
    node = resources.files("kb") / "templates" / "workspace" / "validators" / f"{name}.toml"
    return node.read_text(encoding="utf-8") if node.is_file() else None


def load_profile(validators_dir: Path, name: str) -> Profile:
    """validators/<name>.toml of the workspace, else kb's packaged default of that name."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"validator profile name {name!r} is not a plain name")
    path = Path(validators_dir) / f"{name}.toml"
    if path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        text, where = _packaged(name), f"kb's default validators/{name}.toml"
        if text is None:
            raise ConfigError(f"no validator profile {name!r}: {path} does not exist")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    data.setdefault("name", name)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{where}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
