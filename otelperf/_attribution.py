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
    n = len(spans)
    names: list[str] = [""] * n
    starts: list[int] = [0] * n
    ends: list[int] = [0] * n
    children: dict[int, list[int]] = {}
    root = -1
    for i, (sid, pid, name, start, end) in enumerate(spans):
        names[i] = name
        starts[i] = start
        ends[i] = end if end >= start else start
        if sid == root_id:
            root = i
        else:
            lst = children.get(pid)
            if lst is None:
                children[pid] = [i]
            else:
                lst.append(i)
    if root < 0:
        raise ValueError(f"attribute(root_id={root_id}): the root is not among the spans")

    # Clamped starts and blocking children, breadth-first from the root (no recursion).
    cstart = starts[:]
    blocking: list[list[int]] = [[] for _ in range(n)]
    sids = [s[0] for s in spans]
    order = [root]
    k = 0
    while k < len(order):
        p = order[k]
        k += 1
        kids = children.get(sids[p])
        if not kids:
            continue
        ps, pe = cstart[p], ends[p]
        mine = blocking[p]
        for c in kids:
            cs, ce = starts[c], ends[c]
            if ce < ps or cs > pe or ce > pe:
                continue  # outside the window, or ended after the parent: not blocking
            if cs < ps:
                cstart[c] = ps
            mine.append(c)
            order.append(c)

    root_name = names[root]
    self_time: dict[str, int] = {}
    for p in order:
        dur = ends[p] - cstart[p]
        kids = blocking[p]
        if kids:
            # Union of the children's intervals: sort by start and merge.
            kids.sort(key=cstart.__getitem__)
            covered = 0
            cur_s = cur_e = cstart[kids[0]]
            for c in kids:
                cs, ce = cstart[c], ends[c]
                if cs > cur_e:
                    covered += cur_e - cur_s
                    cur_s, cur_e = cs, ce
                elif ce > cur_e:
                    cur_e = ce
            covered += cur_e - cur_s
            dur -= covered
        name = names[p]
        self_time[name] = self_time.get(name, 0) + dur

    # Critical path: frames of [node, t, next child index]; children by end descending, then
    # by clamped start ascending (the longer of two that end together), then input order.
    critical: dict[str, int] = dict.fromkeys(self_time, 0)  # off-path operations show 0
    for kids in blocking:
        if len(kids) > 1:
            kids.sort(key=lambda c: (-ends[c], cstart[c], c))
    frames: list[list[int]] = [[root, ends[root], 0]]
    while frames:
        frame = frames[-1]
        node, t, i = frame
        kids = blocking[node]
        nk = len(kids)
        while i < nk and ends[kids[i]] > t:
            i += 1
        name = names[node]
        if i == nk:
            critical[name] = critical.get(name, 0) + (t - cstart[node])
            frames.pop()
            continue
        c = kids[i]
        critical[name] = critical.get(name, 0) + (t - ends[c])
        frame[1] = cstart[c]
        frame[2] = i + 1
        frames.append([c, ends[c], 0])

    return Attribution(
        root=root_name,
        duration=ends[root] - starts[root],
        critical_path=critical,
        self_time=self_time,
        spans=len(order),
        excluded=n - len(order),
    )
