"""Several nodes started together, stopped together, however the test ends.

A :class:`Cluster` owns :class:`~tests.multinode.nodes.Node` objects: it runs
their ``carnet init`` in parallel, then their ``carnet serve``, waits until
all answer ``/healthz``, and on close (end of a ``with`` block, normal, on a
failed assertion or on Ctrl-C) stops them all with one SIGTERM each and
releases their ports and databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tests.multinode.nodes import STARTUP_TIMEOUT, Database, Node, NodeError, wait_healthy
from tests.multinode.tomlfile import deep_merge
from tests.multinode.waiting import wait_until

T = TypeVar("T")


class Cluster:
    """Several nodes started and stopped together; ``cluster.a``, ``cluster["a"]``, or iterate.

    A context manager: leaving the ``with`` block, normally, on a failed
    assertion or on Ctrl-C, stops every node and drops their databases.
    """

    def __init__(
        self,
        root: Path,
        names: Sequence[str] = ("a", "b", "c"),
        *,
        config: Mapping[str, Any] | None = None,
        node_config: Mapping[str, Mapping[str, Any]] | None = None,
        database: Database | None = None,
        admin: bool = True,
    ) -> None:
        """Describe the nodes; nothing runs until :meth:`start`.

        Args:
            root: Folder for the data folders and logs (a test's ``tmp_path``).
            names: One node per name, in this order.
            config: Extra settings for every node.
            node_config: Extra settings per node name, merged over ``config``.
            database: ``sqlite`` or ``postgresql``; default: the suite's backend.
            admin: Create a first admin on each node.
        """
        if len(set(names)) != len(names):
            raise ValueError(f"node names must differ: {names}")
        per_node = node_config or {}
        unknown = set(per_node) - set(names)
        if unknown:
            raise ValueError(f"node_config names unknown nodes: {sorted(unknown)}")
        self.root = root
        self.nodes: dict[str, Node] = {}
        try:
            for name in names:
                merged = deep_merge(config or {}, per_node.get(name, {}))
                self.nodes[name] = Node(name, root, config=merged, database=database, admin=admin)
        except BaseException:
            self.close()  # release the ports of the nodes already made
            raise

    def __getattr__(self, name: str) -> Node:
        nodes = self.__dict__.get("nodes", {})
        if name in nodes:
            return nodes[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def init(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """``carnet init`` every node not yet initialised, in parallel."""
        todo = [node for node in self if not node.initialised]
        processes = [(node, node._spawn_init()) for node in todo]
        errors: list[str] = []
        for node, process in processes:  # wait for all, even after a failure: no orphans
            try:
                node._finish_init(process, timeout)
            except NodeError as error:
                errors.append(str(error))
        if errors:
            raise NodeError("\n\n".join(errors))

    def start(self, timeout: float = STARTUP_TIMEOUT) -> Cluster:
        """Start every stopped node in parallel and wait until all answer ``/healthz``."""
        self.init(timeout)
        starting = [node for node in self if not node.running]
        for node in starting:
            node._spawn_serve()
        wait_healthy(starting, timeout)
        return self

    def stop(self) -> None:
        """SIGTERM every node at once, then wait for each."""
        for node in self:
            node.terminate()
        for node in self:
            node.stop()

    def close(self) -> None:
        """Stop every node and release what it holds; safe to call twice."""
        errors: list[BaseException] = []
        try:
            self.stop()
        except Exception as error:  # still close each node below
            errors.append(error)
        for node in self:
            try:
                node.close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def wait_until(self, predicate: Callable[[], T], **kwargs: Any) -> T:
        """:func:`~tests.multinode.waiting.wait_until` showing every node's log on timeout."""
        kwargs.setdefault("logs", list(self))
        return wait_until(predicate, **kwargs)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_nodes(
    root: Path,
    names: Sequence[str] = ("a", "b", "c"),
    **kwargs: Any,
) -> Cluster:
    """Build a :class:`Cluster` and start it; on a failed start, stop what did start.

    Keyword arguments are :class:`Cluster`'s. Use as ``with start_nodes(tmp_path) as c:``.
    """
    cluster = Cluster(root, names, **kwargs)
    try:
        return cluster.start()
    except BaseException:
        cluster.close()
        raise
