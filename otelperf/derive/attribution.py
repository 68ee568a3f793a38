"""Critical path and self time of one local root's spans: pure functions over integer ns.

The processor collects one tuple per ended span, ``(span_id, parent_id, name, start, end)``,
and calls :func:`attribute` once when the local root ends.  Everything here is integers, so
the critical-path segments of a root sum to its duration exactly, and nothing recurses, so a
5 000-deep chain is as safe as a 10 000-child fan-out (O(n log n): one sort of each span's
children).

Definitions (docs/processor.md has pictures):

* A child is clamped to its parent's (clamped) window: its start becomes ``max(start,
  parent.start)``.  A child entirely outside the window is dropped with its subtree.  A child
  that ends after its parent did not block it (asynchronous work): it and its subtree take no
  part in the parent's critical path or self time.  Spans that had not ended when the root
  ended are not in the input at all, so their subtrees are unreachable and left out too.
* Critical path, walked back from the root's end ``t``: the child that finished last at or
  before ``t`` takes the segment from its end (ties: the one that started first, i.e. the
  longer one), the parent takes the gap ``[child.end, t]``, the walk descends into the child
  and then continues in the parent from the child's start.
* Self time: a span's duration minus the union of its blocking children's clamped intervals.

Where no two blocking siblings overlap anywhere in the tree (synchronous work, one step after
another), the walk would take every blocking span whole, so each span's share of the critical
path equals its self time: that common case skips the walk.

>>> spans = [(1, 0, "root", 0, 100), (2, 1, "A", 10, 30), (3, 1, "B", 20, 50)]
>>> a = attribute(1, spans)
>>> a.critical_path, a.self_time["root"]
({'root': 70, 'A': 0, 'B': 30}, 60)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter

SpanTuple = tuple[int, int, str, int, int]
"""``(span_id, parent_span_id, name, start_ns, end_ns)``; parent 0 for the local root."""


@dataclass
class Attribution:
    """Where one local root's time went, in integer nanoseconds per operation name."""

    root: str
    duration: int
    critical_path: dict[str, int] = field(default_factory=dict)
    self_time: dict[str, int] = field(default_factory=dict)
    spans: int = 0  # spans that took part (the root included)
    excluded: int = 0  # spans given but left out: async, outside their parent, or orphaned


def attribute(root_id: int, spans: list[SpanTuple]) -> Attribution:
    """Critical path and self time of the tree under ``root_id`` (see the module docstring).

    ``spans`` must contain the root; spans not reachable from it through their parents are
    counted in ``excluded``.  An end before a start (broken clocks) is read as zero length.

    >>> attribute(1, [(1, 0, "r", 5, 9)]).critical_path
    {'r': 4}
    """
    root, duration, critical, self_time, included = attribute_fast(root_id, spans)
    excluded = len(spans) - included
    return Attribution(root, duration, dict(critical), dict(self_time), included, excluded)


def attribute_fast(
    root_id: int, spans: list[SpanTuple]
) -> tuple[str, int, dict[str, int], dict[str, int], int]:
    """:func:`attribute` as a plain tuple: root name, duration, critical path, self time, spans
    included.  The processor's per-request path (a dataclass costs a few hundred ns).  The two
    dicts may be one object (where they are equal): read them, do not change them."""
    # This runs once per request over all its spans, so it is written for CPython speed
    # (bytecodes per span, measured with callgrind): the tuples are unpacked where they are
    # read rather than unzipped into columns, each span's children are swept in the order
    # they were filed (as they ended) and sorted only when that is not already start and end
    # order, and the walk follows only the spans on the path.
    n = len(spans)
    root = spans[-1] if spans else None
    if root is None or root[0] != root_id:
        if not spans:
            raise ValueError(f"attribute(root_id={root_id}): no spans given")
        for i, s in enumerate(spans):
            if s[0] == root_id:
                root = s
                others = spans[:i] + spans[i + 1 :]
                break
        else:
            raise ValueError(f"attribute(root_id={root_id}): the root is not among the spans")
    elif n == 1:  # a root without ended children: all its own
        _, _, name, start, end = root
        d = end - start if end > start else 0
        return name, d, {name: d}, {name: d}, 1
    else:
        others = spans[:-1]  # where the processor files the root
    _, _, rname, rs, re = root
    if re < rs:
        re = rs  # broken clocks: zero length
    children: dict[int, list[SpanTuple]]
    deep = list(map(_PARENT, others)).count(root_id) != len(others)
    if not deep:
        # Every span a child of the root (a flat request: its calls made from the handler):
        # told apart in C, for a fraction of grouping them one by one.
        children = {root_id: others}
    else:
        children = {}
        get = children.get
        for s in others:
            lst = get(s[1])
            if lst is None:
                children[s[1]] = [s]
            else:
                lst.append(s)
    get = children.get

    self_time: dict[str, int] = {rname: re - rs}
    st_get = self_time.get
    blocking: dict[int, list[SpanTuple]] = {}  # span id -> its blocking children, latest first
    included = 1
    sequential = True  # no two blocking siblings overlap, anywhere in the tree
    parents: list[SpanTuple] = [(root_id, 0, rname, rs, re)]
    for p in parents:  # grows while iterated: breadth-first over spans that have children
        psid, _, pname, ps, pe = p
        kids = get(psid)
        if not kids:
            continue
        if len(parents) > n:
            break  # only repeated span ids can make a cycle: never loop forever on them
        fixed: dict[SpanTuple, SpanTuple | None] | None = None  # the rare cases' results
        # The union of the blocking children's intervals, summed while they arrive in start
        # order (the usual case: the processor files spans as they end); ``ordered`` says
        # whether they did, by start and strictly by end, else it is redone after a sort.
        last_s = ps
        last_e = ps - 1
        covered = 0
        ordered = True
        for k in kids:
            sid, _, cn, cs, ce = k
            if ce < cs or cs < ps or ce > pe:  # the rare cases, each as the docstring says
                if fixed is None:
                    fixed = {}
                if ce < cs:
                    ce = cs  # broken clocks: zero length
                if ce > pe or ce < ps:
                    fixed[k] = None
                    continue  # ended after the parent (async), or entirely before its window
                if cs < ps:
                    cs = ps
                fixed[k] = k = (sid, psid, cn, cs, ce)  # (keyed by the tuple as filed)
            d = ce - cs
            self_time[cn] = st_get(cn, 0) + d
            if cs < last_e or ce <= last_e:  # overlaps the previous child, or out of order
                sequential = False
                if cs < last_s or ce <= last_e:
                    ordered = False
                else:
                    covered += ce - last_e  # in order: only its part after the previous one
            else:
                covered += d
            last_s = cs
            last_e = ce
            if deep and sid in children:
                parents.append(k)
        if fixed is None:  # all of them blocking, as they were filed: no list built per child
            mine = kids
        else:  # (a tuple's fate depends on its values alone, so equal ones share it)
            mine = [f for f in map(fixed.get, kids, kids) if f is not None]
            if not mine:
                continue
        included += len(mine)
        if ordered:
            mine.reverse()  # by end, latest first, for the walk below
        else:
            mine.sort(key=_START)
            cur_s = cur_e = mine[0][3]
            covered = 0
            for k in mine:
                cs, ce = k[3], k[4]
                if cs > cur_e:
                    covered += cur_e - cur_s
                    cur_s, cur_e = cs, ce
                elif ce > cur_e:
                    cur_e = ce
            covered += cur_e - cur_s
            # stable: of two that end together the one that started first comes first
            mine.sort(key=_END, reverse=True)
        self_time[pname] -= covered
        blocking[psid] = mine

    if sequential:
        # Work done one step after another (the usual synchronous request): walked back from
        # each end, every blocking child is taken whole and its parent keeps exactly the gaps,
        # so each span's share of the critical path is its self time.  No walk needed.
        return rname, re - rs, self_time, self_time, included

    # The walk: each span's blocking children latest end first; the one that ended last at or
    # before ``t`` is on the path, then the walk descends into it and continues in the parent
    # from its start.  A stack of suspended parents (name, t, start, the rest of their
    # children) instead of recursion.
    critical: dict[str, int] = dict.fromkeys(self_time, 0)
    stack: list[tuple[str, int, int, Iterator[SpanTuple]]] = []
    name, t, start, rest = rname, re, rs, iter(blocking[root_id])
    while True:
        acc = 0
        for k in rest:
            ce = k[4]
            if ce > t:
                continue
            acc += t - ce
            t = k[3]
            below = blocking.get(k[0])
            if below is not None and len(stack) < n:  # (deeper only with repeated span ids)
                critical[name] += acc
                stack.append((name, t, start, rest))
                name, t, start, rest = k[2], ce, t, iter(below)
                break
            critical[k[2]] += ce - t
        else:
            critical[name] += acc + t - start
            if not stack:
                break
            name, t, start, rest = stack.pop()

    return rname, re - rs, critical, self_time, included


_PARENT = itemgetter(1)
_START = itemgetter(3)
_END = itemgetter(4)
