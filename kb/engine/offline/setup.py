"""A small, visible setup for a documentation example that uses names defined elsewhere.

Docstring examples are written for a reader who has a training loop already: ``model``,
``optimizer``, ``loss_fn``, ``data``. Where every such name is one a tiny stand-in honestly
plays (a linear model, random tensors, plain SGD, one training step), kb writes that stand-in
above the example, under a comment that says kb added it, so the example runs as shown. A name
outside this list, or a stand-in the example itself would rebind (it defines its own ``model``
but takes ``optimizer`` from elsewhere), gets no setup: the example stays an excerpt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FEATURES, CLASSES, BATCH = 8, 4, 16  # the stand-ins' sizes: small enough to run in milliseconds on a CPU

# "{dev}" in a stand-in is where a device goes: nothing for the CPU, ', device="cuda"' for an example that needs a GPU.
_RANDOM_BATCHES = (f"[(torch.randn({BATCH}, {FEATURES}{{dev}}), torch.randint(0, {CLASSES}, ({BATCH},){{dev}})) "
                   "for _ in range(4)]")
_NET = (f"class {{name}}(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"        self.fc = nn.Linear({FEATURES}, {CLASSES}{{dev}})\n\n    def forward(self, x):\n        return self.fc(x)")


@dataclass(frozen=True)
class StandIn:
    code: str  # the lines that bind the name ("{dev}" where a tensor or module is made)
    needs: tuple[str, ...] = ()  # other stand-ins its code uses


STAND_INS: dict[str, StandIn] = {
    "model": StandIn(f"model = nn.Linear({FEATURES}, {CLASSES}{{dev}})"),
    "module": StandIn(f"module = nn.Linear({FEATURES}, {CLASSES}{{dev}})"),
    **{name: StandIn(_NET.replace("{name}", name)) for name in ("Net", "Model", "MyModel")},
    "optimizer": StandIn("optimizer = torch.optim.SGD(model.parameters(), lr=0.1)", ("model",)),
    "loss_fn": StandIn("loss_fn = nn.CrossEntropyLoss()"),
    "criterion": StandIn("criterion = nn.CrossEntropyLoss()"),
    "input": StandIn(f"input = torch.randn({BATCH}, {FEATURES}{{dev}})"),
    "inputs": StandIn(f"inputs = torch.randn({BATCH}, {FEATURES}{{dev}})"),
    "x": StandIn(f"x = torch.randn({BATCH}, {FEATURES}{{dev}})"),
    "target": StandIn(f"target = torch.randint(0, {CLASSES}, ({BATCH},){{dev}})"),
    "targets": StandIn(f"targets = torch.randint(0, {CLASSES}, ({BATCH},){{dev}})"),
    "labels": StandIn(f"labels = torch.randint(0, {CLASSES}, ({BATCH},){{dev}})"),
    **{name: StandIn(f"{name} = {_RANDOM_BATCHES}") for name in ("data", "dataloader", "data_loader", "loader", "train_loader")},
    "epochs": StandIn("epochs = range(2)"),
    "num_epochs": StandIn("num_epochs = 2"),
    "N": StandIn("N = 4"),
    # One training step on the random batch: what "train(...)" stands for in a scheduler's example.
    "train": StandIn("def train(*args):\n    optimizer.zero_grad()\n    loss_fn(model(input), target).backward()\n    optimizer.step()",
                     ("model", "optimizer", "loss_fn", "input", "target")),
    "validate": StandIn("def validate(*args):\n    with torch.no_grad():\n        return loss_fn(model(input), target).item()",
                        ("model", "loss_fn", "input", "target")),
    # The work a profiler example measures: a forward and backward pass of the model.
    "code_to_profile": StandIn("def code_to_profile():\n    model(input).sum().backward()", ("model", "input")),
    "code_iteration_to_profile": StandIn("def code_iteration_to_profile(step):\n    model(input).sum().backward()",
                                         ("model", "input")),
}
SETUP_IMPORTS = ("import torch", "import torch.nn as nn")
SETUP_MARK = "# Setup added by kb"


def _closure(names: list[str]) -> list[str] | None:
    """The stand-ins for ``names`` and what they need, dependencies first; None if a name has none."""
    order: list[str] = []

    def add(name: str) -> bool:
        if name in order:
            return True
        stand_in = STAND_INS.get(name)
        if stand_in is None:
            return False
        if not all(add(dep) for dep in stand_in.needs):
            return False
        order.append(name)
        return True

    return order if all(add(n) for n in names) else None


def setup_for(free: list[str], binds: list[str]) -> list[str] | None:
    """The stand-ins an example using ``free`` (and binding ``binds``) needs, in order; None when none fits honestly.

    A stand-in the example rebinds would be stale: ``optimizer`` built on our ``model`` while the
    example makes its own ``model`` optimizes the wrong parameters. Such an example gets no setup.
    """
    if not free:
        return None
    order = _closure(list(free))
    if order is None:
        return None
    if any(name in binds for name in order if name not in free):
        return None
    return order


# "# Assuming optimizer uses lr = 0.05 for all groups" (torch's schedulers): the values the example's comments show.
_ASSUMED_LR = re.compile(r"optimizer uses lr\s*=\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)", re.I)


def setup_code(names: list[str], origin: str, example: str = "", device: str | None = None) -> str:
    """The setup block for the stand-ins ``names`` (from :func:`setup_for`), its comment saying kb wrote it; an
    optimizer gets the learning rate the ``example`` says it assumes, so the values its comments show are the run's.
    ``device`` ("cuda"): the model and tensors are made there, for an example whose point needs that device."""
    where = f" on {device}" if device else ""
    lines = [f"{SETUP_MARK} (not in the {origin} docs): a tiny model and random data{where}, so the example runs."]
    assumed = _ASSUMED_LR.search(example)
    for name in names:
        code = STAND_INS[name].code.replace("{dev}", f', device="{device}"' if device else "")
        if name == "optimizer" and assumed:
            code = code.replace("lr=0.1", f"lr={assumed.group(1)}")
        lines.append(code)
    return "\n".join(lines)
