"""The rewritten attribution (fewer bytecodes per span) against the one it replaced.

``attribute_before`` is ``attribute_fast`` as of commit b27dbc0, kept here only as the oracle:
on any tree with unique span ids (what the SDK makes) the new one returns the same root name,
duration, critical path, self time (the same keys in the same order: the order in which the
totals create their series) and span count, and shares the two dicts exactly when the old one
did.  The trees overlap, touch, nest, fall outside their parents, end after them, have broken
clocks, orphans and repeated names (the root's too), filed as the processor files them or in
any order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otelperf.derive.attribution import SpanTuple, attribute_fast


def _result(r: tuple[str, int, dict[str, int], dict[str, int], int]) -> tuple[object, ...]:
    name, duration, critical, self_time, included = r
    return (
        name,
        duration,
        list(critical.items()),
        list(self_time.items()),
        included,
        (critical is self_time),
    )


@st.composite
def span_trees(draw: st.DrawFn) -> list[SpanTuple]:
    n = draw(st.integers(min_value=1, max_value=30))
    names = draw(st.lists(st.sampled_from(["root", "a", "b", "c", "d"]), min_size=n, max_size=n))
    root_start = draw(st.integers(0, 20))
    spans: list[SpanTuple] = [(1, 0, "root", root_start, draw(st.integers(root_start - 2, 90)))]
    for i in range(1, n):
        # mostly children of recent spans (deep trees), some of the root (fan-outs), a few
        # of a span that never ended (orphans)
        pick = draw(st.integers(0, 9))
        if pick == 0:
            parent_id = 10_000 + i
            edges = [0, 50]
        else:
            parent = spans[0] if pick < 4 else spans[draw(st.integers(max(0, i - 4), i - 1))]
            parent_id = parent[0]
            edges = [parent[3], parent[4], spans[-1][3], spans[-1][4]]
        start = draw(st.one_of(st.sampled_from(edges), st.integers(-10, 95)))
        end = draw(st.one_of(st.sampled_from([*edges, start]), st.integers(start - 3, 100)))
        spans.append((i + 1, parent_id, names[i], start, end))
    order = draw(st.sampled_from(["as filed", "by end", "shuffled"]))
    if order == "by end":  # as the processor files them: as they end, the root last
        spans = sorted(spans[1:], key=lambda s: s[4]) + spans[:1]
    elif order == "shuffled":
        spans = draw(st.permutations(spans))
    else:
        spans = spans[1:] + spans[:1]
    return spans


@given(span_trees())
@settings(max_examples=1500, deadline=None)
def test_the_rewrite_equals_the_attribution_it_replaced(spans: list[SpanTuple]) -> None:
    assert _result(attribute_fast(1, spans)) == _result(attribute_before(1, list(spans)))


def test_parallel_children_and_a_deep_chain_equal_the_old_one() -> None:
    """The benchmark's shapes (children all overlapping, or one after another) and a chain."""
    par = [(i, 1, f"op{i % 8}", 100 + i, 1_000 + i) for i in range(2, 11)] + [(1, 0, "r", 0, 2_000)]
    seq = [(i, 1, f"op{i % 8}", 100 * i, 100 * i + 50) for i in range(2, 11)] + [
        (1, 0, "r", 0, 2_000)
    ]
    chain = [(i + 1, i, f"s{i % 3}", i, 400 - i) for i in range(1, 200)] + [(1, 0, "r", 0, 400)]
    for spans in (par, seq, chain):
        assert _result(attribute_fast(1, spans)) == _result(attribute_before(1, spans))


def test_repeated_span_ids_end_instead_of_looping() -> None:
    """A broken id generator (every span the same id) once sent the walk round forever."""
    spans: list[SpanTuple] = [(5, 5, "child", 10, 20), (5, 5, "child", 12, 18), (5, 0, "r", 0, 30)]
    name, duration, critical, _, _ = attribute_fast(5, spans)
    assert (name, duration, sum(critical.values())) == ("r", 30, 30)


# -- the oracle ------------------------------------------------------------------------------


def attribute_before(
    root_id: int, spans: list[SpanTuple]
) -> tuple[str, int, dict[str, int], dict[str, int], int]:
    """otelperf.derive.attribution.attribute_fast as it was before it was rewritten for speed
    (commit b27dbc0), verbatim: the oracle the new one must equal, key order included."""
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
