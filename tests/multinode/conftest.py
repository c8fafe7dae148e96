"""Fixtures for tests that run several real nodes, and fault proxies between them.

* ``make_cluster(names=("a", "b", "c"), *, start=True, **Cluster kwargs) -> Cluster``
* ``three_nodes(*, start=True, **Cluster kwargs) -> Cluster`` with nodes ``a``, ``b``, ``c``
* ``fault_proxy(upstream_port, *, name="proxy") -> FaultProxy``, started
* ``link(src, dst, *, route=True) -> FaultProxy``: the proxy for the directed link
  src→dst (one per pair); with ``route``, src's ``federation_connect`` sends
  dst's origin through it from src's next (re)start

Rule: every process and proxy a fixture made is stopped at teardown, whether
the test passed, failed or was interrupted, and a failed test's report shows
the end of every node's log and every proxy's request log. Federation tests
that need these fixtures live in this folder.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy
from tests.multinode.nodes import Node
from tests.multinode.waiting import HasLog

#: Nodes and proxies a test made, so that its failure report can show their logs.
LOGS = pytest.StashKey[list[HasLog]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for source in item.stash.get(LOGS, []):
            report.sections.append((f"log of {source.name}", source.log_tail(60)))
    return report


def _remember(request: pytest.FixtureRequest, *sources: HasLog) -> None:
    request.node.stash.setdefault(LOGS, []).extend(sources)


@pytest.fixture
def make_cluster(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Cluster]]:
    """Factory of started clusters, each in its own folder under ``tmp_path``; all stopped at teardown."""
    clusters: list[Cluster] = []

    def make(
        names: Sequence[str] = ("a", "b", "c"), *, start: bool = True, **kwargs: Any
    ) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", names, **kwargs)
        clusters.append(cluster)
        _remember(request, *cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    errors: list[BaseException] = []
    for cluster in reversed(clusters):
        try:
            cluster.close()
        except Exception as error:  # close the others before reporting it
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture
def three_nodes(make_cluster: Callable[..., Cluster]) -> Callable[..., Cluster]:
    """Factory of a cluster of nodes ``a``, ``b`` and ``c`` (``a, b, c = three_nodes()`` works)."""

    def make(*, start: bool = True, **kwargs: Any) -> Cluster:
        return make_cluster(("a", "b", "c"), start=start, **kwargs)

    return make


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest) -> Iterator[Callable[..., FaultProxy]]:
    """Factory of started :class:`FaultProxy` objects to ``127.0.0.1:upstream_port``."""
    proxies: list[FaultProxy] = []

    def make(upstream_port: int, *, name: str = "proxy") -> FaultProxy:
        proxy = FaultProxy(upstream_port, name=name).start()
        proxies.append(proxy)
        _remember(request, proxy)
        return proxy

    yield make
    for proxy in reversed(proxies):
        proxy.close()


@pytest.fixture
def link(fault_proxy: Callable[..., FaultProxy]) -> Callable[..., FaultProxy]:
    """``link(src, dst)``: the fault proxy src→dst, routed in src's config unless ``route=False``."""
    links: dict[tuple[str, str], FaultProxy] = {}

    def make(src: Node, dst: Node, *, route: bool = True) -> FaultProxy:
        key = (src.origin, dst.origin)
        if key not in links:
            links[key] = fault_proxy(dst.port, name=f"{src.name}->{dst.name}")
        proxy = links[key]
        if route:
            src.route(dst.origin, proxy.url)
        return proxy

    return make
