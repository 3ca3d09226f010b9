"""The environment a result belongs to, and its fingerprint (part of every cache key)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from kb.errors import ConfigError
from kb.snippets.profiles import Profile
from kb.snippets.sandbox import probe as probe_module

# What a run records, in the cache key: a result kept from before a change to it is run again. 2: a snippet's stderr
# shows the DeprecationWarning a library raises (kb.snippets.sandbox.child).
RECORDS = 2


@dataclass
class Environment:
    """Facts about the interpreter and machine that can change a snippet's result."""

    python: str
    torch: str | None
    cuda: str | None  # the CUDA version torch was built with (None: a CPU build)
    gpus: list[dict] = field(default_factory=list)
    profile: str = "cpu"
    profile_digest: str = ""
    executable: str = ""
    modules: dict[str, bool] = field(default_factory=dict)
    backend: str = "local"

    @property
    def gpu(self) -> str | None:
        names = sorted({g.get("name", "") for g in self.gpus})
        return ", ".join(names) if names else None

    @property
    def driver(self) -> str | None:
        return self.gpus[0].get("driver") if self.gpus else None

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def cuda_usable(self) -> bool:
        return bool(self.gpus) and self.cuda is not None

    @property
    def fingerprint(self) -> str:
        key = {
            "python": self.python,
            "torch": self.torch,
            "cuda": self.cuda,
            "gpu": self.gpu,
            "profile": f"{self.profile}:{self.profile_digest}",
            "records": RECORDS,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return {
            "python": self.python,
            "torch": self.torch,
            "cuda": self.cuda,
            "gpu": self.gpu,
            "gpu_count": self.gpu_count,
            "driver": self.driver,
            "profile": self.profile,
            "fingerprint": self.fingerprint,
            "executable": self.executable,
            "backend": self.backend,
        }


def _same_python(path: str) -> bool:
    return os.path.abspath(path) == os.path.abspath(sys.executable)


def probe_environment(profile: Profile, modules: list[str]) -> Environment:
    """Probe the profile's interpreter without importing torch (fast enough for a cached rerun)."""
    interpreter = profile.python()
    if _same_python(interpreter):
        info = probe_module.probe(modules)
    else:
        try:
            proc = subprocess.run(
                [interpreter, probe_module.__file__, *modules], capture_output=True, text=True, timeout=60, check=False
            )
            info = json.loads(proc.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise ConfigError(f"validator profile {profile.name!r}: cannot run its interpreter {interpreter!r}: {exc}") from None
    return Environment(
        python=info["python"],
        torch=info.get("torch"),
        cuda=info.get("cuda"),
        gpus=info.get("gpus") or [],
        profile=profile.name,
        profile_digest=profile.digest(),
        executable=info.get("executable", interpreter),
        modules=info.get("modules") or {},
    )
