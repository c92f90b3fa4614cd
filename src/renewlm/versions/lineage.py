"""Lineage: versions form a graph (a run has one parent, a soup several), and a version's lineage
is every ancestor in the store, each once, parents before children."""

from __future__ import annotations

from renewlm.errors import CorruptError
from renewlm.store import Store
from renewlm.versions.folders import read_version
from renewlm.versions.record import VersionRecord


def lineage(store: Store, name: str, metas: dict[str, VersionRecord] | None = None) -> list[VersionRecord]:
    """The version and all its ancestors in the store, each once, every parent before its children.

    A parent outside the store (a local folder a run started from) ends that branch of the graph.
    `metas` (every record by name, as `list_versions` reads them) saves re-reading them. Records that
    name a version among its own ancestors (edited by hand, or copied between stores) are refused.
    """
    if metas is None:
        exists, read = (lambda n: store.exists("versions", n)), (lambda n: read_version(store, n))
    else:
        exists, read = metas.__contains__, metas.__getitem__
    order: list[VersionRecord] = []
    done: set[str] = set()
    path: dict[str, None] = {}  # the versions being expanded, in order: the way from `name` up to the current one
    stack: list[tuple[str, bool]] = [(name, False)]
    while stack:  # depth-first, iterative: a long series of versions never hits the recursion limit
        current, expanded = stack.pop()
        if current in done:
            continue
        meta = read(current)
        if expanded:
            path.popitem()
            done.add(current)
            order.append(meta)
            continue
        stack.append((current, True))
        path[current] = None
        for parent in reversed(meta.parent_names):
            if parent in path:  # the way up leads back down: the records go round
                way = list(path)
                raise cycle_error(store, [parent, *reversed(way[way.index(parent):])])
            if parent not in done and exists(parent):
                stack.append((parent, False))
    return order


def cycle_error(store: Store, cycle: list[str]) -> CorruptError:
    """One sentence for records whose parents go round: `cycle` runs parent → child back to where it began."""
    folder = store.root / "versions"
    if len(cycle) == 2:
        return CorruptError(
            f"version {cycle[0]!r} names itself as its parent in {folder / cycle[0] / 'version.json'}, so its lineage "
            f"never ends; correct `parents` there, or remove the version with `renewlm rm {cycle[0]} --force`"
        )
    return CorruptError(
        f"versions {' → '.join(cycle)} are each other's ancestors in their version.json under {folder}, so their "
        f"lineage never ends; correct `parents` in one of them, or remove one with `renewlm rm NAME --force`"
    )


def lineage_corpora(store: Store, name: str) -> list[str]:
    """Every corpus the version and its ancestors trained on, in first-seen order."""
    names: dict[str, None] = {}
    for meta in lineage(store, name):
        names.update(dict.fromkeys(meta.corpora))
    return list(names)


def lineage_corpus_tokens(store: Store, name: str) -> dict[str, float]:
    """Tokens each corpus gave the runs of the lineage (each run once), where the records say."""
    tokens: dict[str, float] = {}
    for meta in lineage(store, name):
        for corpus, count in (meta.corpus_tokens or {}).items():
            tokens[corpus] = tokens.get(corpus, 0.0) + count
    return tokens


def lineage_new_data(chain: list[VersionRecord]) -> dict[str, int]:
    """Tokens of new data each corpus gave a lineage (`lineage`'s list, parents first): what each run read of the
    corpora no run before it had trained on, per corpus, as the records' `data_tokens` count them. What a run
    read again (replay, a release's decay branch) is left out: it is what a retrain on the data need not read."""
    seen: set[str] = set()
    tokens: dict[str, int] = {}
    for meta in chain:
        read = meta.corpus_tokens or {}
        for corpus, count in read.items():
            if corpus not in seen:
                tokens[corpus] = tokens.get(corpus, 0) + count
        seen.update(read)
    return tokens


def display_parent(meta: VersionRecord, metas: dict[str, VersionRecord]) -> str | None:
    """Where a version sits in the version tree (of the versions `metas`, by name).

    The user names releases and renewlm keeps the trunks (path switching), so the tree reads as a
    series of releases: a trunk sits under the release that branched off it, a release branched off a
    trunk sits under the release before it, and anything else under its first parent (a soup's other
    parents are named on its line).
    """

    def released_from(trunk: str) -> str | None:
        return min((n for n, m in metas.items() if m.trunk == trunk), default=None)

    parents = [p for p in meta.parent_names if p in metas]
    if meta.kind == "trunk" and (release := released_from(meta.name)):
        return release
    if meta.trunk in metas:
        before = [p for p in metas[meta.trunk].parent_names if p in metas]
        if not before:
            return None
        if metas[before[0]].kind == "trunk":
            return released_from(before[0]) or before[0]
        return before[0]
    return parents[0] if parents else None


def display_tree(store: Store, metas: dict[str, VersionRecord]) -> dict[str, str | None]:
    """`display_parent` of every version in `metas`; refused when the records make the tree go round
    (a tree with a loop has no root to print from, and walking it would never end)."""
    under = {name: display_parent(meta, metas) for name, meta in metas.items()}
    placed: set[str] = set()  # versions known to lead up to a root
    for name in under:
        way: dict[str, None] = {}
        current: str | None = name
        while current is not None and current not in placed:
            if current in way:
                loop = list(way)[list(way).index(current):]
                raise cycle_error(store, [current, *reversed(loop)])
            way[current] = None
            current = under[current]
        placed.update(way)
    return under
