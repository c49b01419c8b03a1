"""Joining merged pairs into entities, with a guard against chaining.

Plain connected components chain: A~B and B~C put A and C in one entity even
when A and C, compared directly, are clearly different people; one weak link
in a long chain can glue hundreds of records together. Here edges are added
strongest first (deterministic links, then by match weight), like Kruskal's
algorithm, and an edge that would join two groups is *refused* when the joined
group would

* contain a rejected pair (a stored human "these are different" decision),
* contain a pair that was compared directly and scored below
  ``min_pair_probability`` (the weakest-link guard),
* or exceed ``max_cluster_size``.

Deterministic edges ignore the last two guards (they link regardless of the
score) but not rejections. Refused edges are reported so their pairs can go to
the review queue.
"""

from __future__ import annotations

__all__ = ["constrained_components", "plain_components"]

import numpy as np


class _Groups:
    """Union-find over the nodes that have edges: group sizes and, per root, the nodes
    its members must not (``hard``) or should not (``soft``) be grouped with.

    Only what differs from a node on its own is stored (a million-record run has
    a few hundred thousand merged records, not a set per record).
    """

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.hard: dict[int, set[int]] = {}
        self.soft: dict[int, set[int]] = {}

    def find(self, x: int) -> int:
        path, root = [], x
        while (up := self.parent.get(root, root)) != root:
            path.append(root)
            root = up
        for node in path:
            self.parent[node] = root
        return root

    def forbid(self, table: dict[int, set[int]], a: int, b: int) -> None:
        table.setdefault(a, set()).add(b)
        table.setdefault(b, set()).add(a)

    def conflict(self, a: int, b: int, *, soft: bool) -> bool:
        """Whether root ``a``'s group holds a node kept apart from root ``b``'s group."""
        partners = [self.hard.get(a, ())] + ([self.soft.get(a, ())] if soft else [])
        return any(self.find(p) == b for found in partners for p in found)

    def size(self, root: int) -> int:
        return self.sizes.get(root, 1)

    def union(self, a: int, b: int) -> None:
        if self.size(a) < self.size(b):
            a, b = b, a
        self.parent[b] = a
        self.sizes[a] = self.size(a) + self.sizes.pop(b, 1)
        for table in (self.hard, self.soft):
            if b in table:
                table.setdefault(a, set()).update(table.pop(b))


def plain_components(n: int, edge_a: np.ndarray, edge_b: np.ndarray) -> np.ndarray:
    """Smallest node index of every node's connected component (no guards), in numpy.

    The guarded clusters only split these: two records in different plain
    components never meet, so a weak pair between them can be left out.
    """
    labels = np.arange(n, dtype=np.int64)
    while True:
        low = np.minimum(labels[edge_a], labels[edge_b])
        new = labels.copy()
        np.minimum.at(new, edge_a, low)
        np.minimum.at(new, edge_b, low)
        new = new[new]   # pointer jumping: a label's label is at most as small
        if np.array_equal(new, labels):
            return labels
        labels = new


def constrained_components(n: int, edge_a: np.ndarray, edge_b: np.ndarray,
                           strength: np.ndarray, hard: np.ndarray,
                           rejected: list[tuple[int, int]], weak: list[tuple[int, int]],
                           max_cluster_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label per node and, per edge, whether the edge was used.

    ``edge_a``/``edge_b`` are node indices of the merge edges, ``strength`` their
    order (higher first), ``hard`` marks deterministic edges; ``rejected`` and
    ``weak`` are node pairs that must not / should not end up together.
    Labels are the smallest node index of each cluster.
    """
    groups = _Groups()
    involved = set(edge_a.tolist()) | set(edge_b.tolist())
    for table, pairs in ((groups.hard, rejected), (groups.soft, weak)):
        for a, b in pairs:
            if a in involved and b in involved:
                groups.forbid(table, a, b)
    order = np.lexsort((-strength, ~hard))  # deterministic first, then strongest
    used = np.zeros(len(edge_a), dtype=bool)
    for e in order:
        ra, rb = groups.find(int(edge_a[e])), groups.find(int(edge_b[e]))
        if ra == rb:
            used[e] = True
            continue
        is_hard = bool(hard[e])
        if groups.conflict(ra, rb, soft=not is_hard):
            continue
        if not is_hard and groups.size(ra) + groups.size(rb) > max_cluster_size:
            continue
        groups.union(ra, rb)
        used[e] = True
    roots = np.arange(n, dtype=np.int64)
    for node in involved:
        roots[node] = groups.find(node)
    smallest = np.full(n, n, dtype=np.int64)
    np.minimum.at(smallest, roots, np.arange(n))
    return smallest[roots], used
