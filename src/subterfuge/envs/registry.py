"""Finding environments by name: the built-in curriculum plus plug-ins.

Third-party packages add environments through the `subterfuge.envs` entry-point
group; each entry point names a zero-argument callable returning an
`Environment` (or an iterable of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from subterfuge.envs.base import CURRICULUM, Environment
from subterfuge.envs.flattery import ToolUseFlattery
from subterfuge.envs.rubric import RubricModification
from subterfuge.envs.sycophancy import PoliticalSycophancy
from subterfuge.envs.tampering import RewardTampering

ENTRY_POINT_GROUP = "subterfuge.envs"


def curriculum() -> list[Environment]:
    """The five reference stages, in curriculum order."""
    envs: list[Environment] = [
        PoliticalSycophancy(),
        ToolUseFlattery(),
        RubricModification(insubordinate=False),
        RubricModification(insubordinate=True),
        RewardTampering(),
    ]
    assert [e.stage for e in envs] == list(CURRICULUM)
    return envs


def _plugins() -> list[Environment]:
    found: list[Environment] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        made = ep.load()()
        items = made if isinstance(made, Iterable) else [made]
        found.extend(e for e in items if isinstance(e, Environment))
    return found


def all_environments() -> dict[str, Environment]:
    """Every environment by name; built-ins win over plug-ins of the same name."""
    envs: dict[str, Environment] = {}
    for env in [*_plugins(), *curriculum()]:
        envs[env.name] = env
    return envs


def get_environment(name: str) -> Environment:
    envs = all_environments()
    try:
        return envs[name]
    except KeyError:
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(envs))}") from None
