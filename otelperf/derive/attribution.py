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

from dataclasses import dataclass, field

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
    # This runs once per request over all its spans, so it is written for CPython speed:
    # columns unzipped in C, leaves handled without a stack frame or a queue entry, and the
    # children of each span swept in the order they ended (sorted only when that is not
    # already start and end order).
    if len(spans) == 1:
        sid, _, name, start, end = spans[0]
        if sid == root_id:
            d = end - start if end > start else 0
            return name, d, {name: d}, {name: d}, 1
    if not spans:
        raise ValueError(f"attribute(root_id={root_id}): no spans given")
    sids, pids, names, starts, raw_ends = zip(*spans, strict=True)
    ends = list(raw_ends)  # an end before its start is fixed where it is first read
    if sids[-1] == root_id:  # where the processor files it
        root = len(sids) - 1
    else:
        try:
            root = sids.index(root_id)
        except ValueError:
            raise ValueError(
                f"attribute(root_id={root_id}): the root is not among the spans"
            ) from None
    children: dict[int, list[int]] = {}
    get = children.get
    for i, pid in enumerate(pids):
        lst = get(pid)
        if lst is None:
            children[pid] = [i]
        else:
            lst.append(i)
    children[pids[root]].remove(root)  # the root is nobody's child, even if ids collide

    cstart = list(starts)
    blocking: dict[int, list[int]] = {}
    rname = names[root]
    if ends[root] < starts[root]:
        ends[root] = starts[root]
    self_time: dict[str, int] = {rname: ends[root] - starts[root]}
    st_get = self_time.get
    included = 1
    parents = [root]
    sequential = True  # no two blocking siblings overlap, anywhere in the tree
    for p in parents:  # grows while iterated: breadth-first over spans that have children
        kids = get(sids[p])
        if not kids:
            continue
        ps, pe = cstart[p], ends[p]
        mine = []
        # The union of the blocking children's intervals, swept while they arrive in start
        # order (the usual case: the processor files spans as they end); ``ordered`` says
        # whether they did, by start and strictly by end, else it is redone after a sort.
        cur_s = cur_e = last_s = ps
        last_e = ps - 1
        covered = 0
        ordered = True
        for c in kids:
            ce = ends[c]
            cs = starts[c]
            if ce < cs:
                ce = ends[c] = cs  # broken clocks: zero length
            if ce > pe or ce < ps:
                continue  # ended after the parent (async), or entirely before its window
            if cs < ps:
                cs = cstart[c] = ps
            mine.append(c)
            cn = names[c]
            self_time[cn] = st_get(cn, 0) + ce - cs
            if cs < last_e or ce <= last_e:  # overlaps the previous child, or out of order
                sequential = False
                if cs < last_s or ce <= last_e:
                    ordered = False
            last_s, last_e = cs, ce
            if cs > cur_e:
                covered += cur_e - cur_s
                cur_s, cur_e = cs, ce
            elif ce > cur_e:
                cur_e = ce
            if sids[c] in children:
                parents.append(c)
        if not mine:
            continue
        included += len(mine)
        if ordered:
            mine.reverse()  # by end, latest first, for the walk below
        else:
            mine.sort(key=cstart.__getitem__)
            cur_s = cur_e = cstart[mine[0]]
            covered = 0
            for c in mine:
                cs, ce = cstart[c], ends[c]
                if cs > cur_e:
                    covered += cur_e - cur_s
                    cur_s, cur_e = cs, ce
                elif ce > cur_e:
                    cur_e = ce
            # stable: of two that end together the one that started first comes first
            mine.sort(key=ends.__getitem__, reverse=True)
        self_time[names[p]] -= covered + cur_e - cur_s
        blocking[p] = mine

    duration = ends[root] - starts[root]
    if sequential:
        # Work done one step after another (the usual synchronous request): walked back from
        # each end, every blocking child is taken whole and its parent keeps exactly the gaps,
        # so each span's share of the critical path is its self time.  No walk needed.
        return rname, duration, self_time, self_time, included

    critical: dict[str, int] = dict.fromkeys(self_time, 0)
    frames: list[list[int]] = [[root, ends[root], 0]]
    while frames:
        frame = frames[-1]
        node, t, i = frame
        name = names[node]
        kids = blocking.get(node)
        if kids:
            nk = len(kids)
            acc = 0
            while i < nk:
                c = kids[i]
                i += 1
                ce = ends[c]
                if ce > t:
                    continue
                acc += t - ce
                t = cstart[c]
                if c in blocking:
                    critical[name] += acc
                    frame[1] = t
                    frame[2] = i
                    frames.append([c, ce, 0])
                    break
                cname = names[c]
                critical[cname] += ce - t
            else:
                critical[name] += acc + t - cstart[node]
                frames.pop()
        else:
            critical[name] += t - cstart[node]
            frames.pop()

    return rname, duration, critical, self_time, included
