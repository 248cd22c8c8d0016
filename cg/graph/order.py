"""Topological order and cycle reports over name -> dependencies maps, without recursion."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from cg.schema.messages import quote


def cycle_text(cycle: list[str]) -> str:
    """'a -> b -> a'; a long cycle shows its start and its length, so the message stays short."""
    text = " -> ".join(cycle)
    if len(text) <= 120:
        return text
    head = " -> ".join(quote(n, 20)[1:-1] for n in cycle[:3])
    return f"{head} -> ... -> {quote(cycle[0], 20)[1:-1]} ({len(cycle) - 1} nodes)"


def topological_order(deps: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm; among ready nodes the earliest declared goes first, so the order
    does not depend on hashing. Returns (order, nodes left over on or behind a cycle)."""
    index = {name: i for i, name in enumerate(deps)}
    users: dict[str, list[str]] = {name: [] for name in deps}
    waiting = {name: 0 for name in deps}
    for name, ds in deps.items():
        for d in ds:
            if d in deps:
                users[d].append(name)
                waiting[name] += 1
    ready = [index[n] for n, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    names = list(deps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, index[user])
    return order, [n for n in deps if waiting[n] > 0]


def walk_cycle(start: str, deps: Mapping[str, list[str]], left: set[str]) -> list[str]:
    """Follow dependencies among the names left over by a topological sort until one repeats:
    the cycle, in the direction of the dependencies, its first name repeated at the end."""
    seen: dict[str, int] = {}
    path: list[str] = []
    name = start
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(d for d in deps[name] if d in left)
    cycle = path[seen[name] :]
    return [*cycle, cycle[0]]


def find_cycle(start: str, deps: Mapping[str, list[str]], left: set[str]) -> list[str]:
    """A cycle among the nodes left over, in the direction data flows (against the dependencies)."""
    cycle = walk_cycle(start, deps, left)[-2::-1]  # reversed, without the repeated name
    return [*cycle, cycle[0]]
