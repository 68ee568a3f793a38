"""The attribution functions alone: hand-computed trees, to the nanosecond, plus properties."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelperf.derive.attribution import SpanTuple, attribute


def test_parallel_fan_out_from_the_issue():
    # children [10,30] and [20,50] under [0,100]
    a = attribute(1, [(1, 0, "root", 0, 100), (2, 1, "A", 10, 30), (3, 1, "B", 20, 50)])
    assert a.critical_path == {"root": 70, "A": 0, "B": 30}
    assert a.self_time == {"root": 60, "A": 20, "B": 30}
    assert (a.root, a.duration, a.spans, a.excluded) == ("root", 100, 3, 0)


def test_touching_siblings_are_both_on_the_path():
    a = attribute(1, [(1, 0, "r", 0, 100), (2, 1, "A", 10, 40), (3, 1, "B", 40, 90)])
    assert a.critical_path == {"r": 20, "A": 30, "B": 50}
    assert a.self_time == {"r": 20, "A": 30, "B": 50}


def test_nested_stages():
    spans: list[SpanTuple] = [
        (1, 0, "root", 0, 100),
        (2, 1, "s1", 0, 60),
        (3, 2, "s1a", 10, 30),
        (4, 2, "s1b", 30, 50),
        (5, 1, "s2", 60, 100),
        (6, 5, "s2a", 70, 90),
    ]
    a = attribute(1, spans)
    assert a.critical_path == {"root": 0, "s1": 20, "s2": 20, "s1a": 20, "s1b": 20, "s2a": 20}
    assert a.self_time == {"root": 0, "s1": 20, "s2": 20, "s1a": 20, "s1b": 20, "s2a": 20}


def test_clamping_and_children_outside_their_parent():
    spans: list[SpanTuple] = [
        (1, 0, "root", 100, 200),
        (2, 1, "C", 50, 150),  # starts before its parent: clamped to [100, 150]
        (3, 2, "G", 60, 90),  # entirely before C's clamped window: dropped
        (4, 2, "H", 80, 120),  # clamped to [100, 120]
        (5, 1, "W", 10, 20),  # entirely before the root: dropped
        (6, 5, "W1", 12, 18),  # W's subtree goes with it
    ]
    a = attribute(1, spans)
    assert a.critical_path == {"root": 50, "C": 30, "H": 20}
    assert a.self_time == {"root": 50, "C": 30, "H": 20}
    assert (a.spans, a.excluded) == (3, 3)


def test_fire_and_forget_and_children_outliving_their_parent_do_not_block():
    spans: list[SpanTuple] = [
        (1, 0, "root", 0, 100),
        (2, 1, "P", 10, 50),
        (3, 2, "Q", 20, 60),  # ends after P: async for P
        (4, 1, "F", 10, 150),  # ends after the root: fire-and-forget
        (5, 4, "F1", 20, 40),  # inside F, so not part of the root's time either
    ]
    a = attribute(1, spans)
    assert a.critical_path == {"root": 60, "P": 40}
    assert a.self_time == {"root": 60, "P": 40}
    assert (a.spans, a.excluded) == (2, 3)


def test_spans_whose_parent_is_missing_are_orphans():
    # the parent (7) was still open when the root ended, so it is not in the input
    a = attribute(1, [(1, 0, "root", 0, 100), (2, 7, "orphan", 10, 20)])
    assert a.critical_path == {"root": 100}
    assert a.excluded == 1


def test_zero_length_spans():
    spans: list[SpanTuple] = [
        (1, 0, "root", 0, 100),
        (2, 1, "Z", 50, 50),
        (3, 1, "Z2", 100, 100),
        (4, 1, "A", 20, 50),
    ]
    a = attribute(1, spans)
    assert a.critical_path == {"root": 70, "Z": 0, "Z2": 0, "A": 30}
    assert a.self_time == {"root": 70, "Z": 0, "Z2": 0, "A": 30}
    assert attribute(9, [(9, 0, "instant", 5, 5)]).critical_path == {"instant": 0}


def test_end_before_start_reads_as_zero_length():
    a = attribute(1, [(1, 0, "root", 0, 100), (2, 1, "bad", 40, 30)])
    assert a.critical_path == {"root": 100, "bad": 0}
    assert a.self_time == {"root": 100, "bad": 0}


def test_children_ending_together_the_longer_one_takes_the_path():
    short, long = (2, 1, "short", 20, 50), (3, 1, "long", 10, 50)
    for kids in ([short, long], [long, short]):  # either order, as they ended
        a = attribute(1, [*kids, (1, 0, "r", 0, 100)])
        assert a.critical_path == {"r": 60, "short": 0, "long": 40}
        assert a.self_time["r"] == 60


def test_repeated_names_are_summed():
    spans: list[SpanTuple] = [
        (1, 0, "r", 0, 100),
        (2, 1, "q", 0, 30),
        (3, 1, "q", 30, 70),
        (4, 1, "q", 60, 80),  # overlaps the second q
    ]
    a = attribute(1, spans)
    # after the last q the walk resumes at 60, where the second q (ended 70) cannot fit
    assert a.critical_path == {"r": 50, "q": 50}
    assert a.self_time == {"r": 20, "q": 90}


def test_missing_root_names_the_argument():
    with pytest.raises(ValueError, match="root_id=5"):
        attribute(5, [(1, 0, "r", 0, 1)])


def test_five_thousand_deep_chain_is_iterative():
    n = 5000
    total = 2 * n
    spans: list[SpanTuple] = [(i + 1, i, f"s{i}", i, total - i) for i in range(n)]
    a = attribute(1, spans)
    assert sum(a.critical_path.values()) == total
    assert all(v == 2 for v in a.critical_path.values())
    assert all(v == 2 for v in a.self_time.values())


def test_ten_thousand_child_fan_out_is_fast():
    n = 10_000
    spans: list[SpanTuple] = [(1, 0, "root", 0, 2 * n)]
    spans += [(i + 2, 1, "child", 2 * i, 2 * i + 1) for i in range(n)]
    t0 = time.perf_counter()
    a = attribute(1, spans)
    elapsed = time.perf_counter() - t0
    assert a.critical_path == {"root": n, "child": n}
    assert a.self_time == {"root": n, "child": n}
    assert elapsed < 1.0, f"10 000-child fan-out took {elapsed:.3f}s"


@st.composite
def trees(draw: st.DrawFn) -> list[SpanTuple]:
    n = draw(st.integers(min_value=1, max_value=40))
    root_end = draw(st.integers(min_value=0, max_value=1000))
    spans: list[SpanTuple] = [(1, 0, "s0", 0, root_end)]
    for i in range(1, n):
        parent = draw(st.integers(min_value=1, max_value=i))
        start = draw(st.integers(min_value=-100, max_value=1100))
        end = draw(st.integers(min_value=start - 5, max_value=1200))
        spans.append((i + 1, parent, f"s{i}", start, end))
    return spans


@given(trees())
@settings(max_examples=300, deadline=None)
def test_critical_path_sums_to_root_and_self_time_is_never_negative(spans: list[SpanTuple]):
    a = attribute(1, spans)
    assert sum(a.critical_path.values()) == a.duration == spans[0][4]
    assert all(v >= 0 for v in a.critical_path.values())
    assert all(v >= 0 for v in a.self_time.values())
    assert a.spans + a.excluded == len(spans)
    # names are unique here, so no span can hold more of the path than its own duration
    durations = {name: max(end - start, 0) for _, _, name, start, end in spans}
    assert all(a.critical_path[k] <= durations[k] for k in a.critical_path)
    assert all(a.self_time[k] <= durations[k] for k in a.self_time)


def by_definition(root_id: int, spans: list[SpanTuple]) -> tuple[dict[str, int], dict[str, int]]:
    """The issue's definitions, spelled out slowly: an independent oracle for attribute().

    Self time counts uncovered nanoseconds one by one; the critical path picks, at each step,
    the not yet walked blocking child that ended last at or before the current point (ties:
    the one that started first, then the first given).
    """
    pos = {s[0]: i for i, s in enumerate(spans)}
    root = spans[pos[root_id]]
    window = {root_id: (root[3], max(root[3], root[4]))}
    blocking: dict[int, list[int]] = {}
    todo = [root_id]
    while todo:
        p = todo.pop()
        ps, pe = window[p]
        blocking[p] = []
        for sid, pid, _, start, end in spans:
            if pid != p or sid == root_id:
                continue
            end = max(start, end)
            if end > pe or end < ps:
                continue  # async, or entirely before the parent's window
            window[sid] = (max(start, ps), end)
            blocking[p].append(sid)
            todo.append(sid)
    name = {s[0]: s[2] for s in spans}
    self_time: dict[str, int] = {}
    critical: dict[str, int] = {}
    for sid, (s, e) in window.items():
        covered = {ns for c in blocking[sid] for ns in range(*window[c])}
        self_time[name[sid]] = self_time.get(name[sid], 0) + (e - s) - len(covered)
        critical.setdefault(name[sid], 0)
    todo = [root_id]
    while todo:
        node = todo.pop()
        start, t = window[node]
        left = set(blocking[node])
        while True:
            fits = [c for c in left if window[c][1] <= t]
            if not fits:
                break
            c = max(fits, key=lambda c: (window[c][1], -window[c][0], -pos[c]))
            left.discard(c)
            critical[name[node]] += t - window[c][1]
            todo.append(c)
            t = window[c][0]
        critical[name[node]] += t - start
    return critical, self_time


@st.composite
def shuffled_trees(draw: st.DrawFn) -> list[SpanTuple]:
    """Trees as the processor files them or in any order, with repeated names, touching and
    identical intervals, and spans outside their parent or ending after it."""
    n = draw(st.integers(min_value=1, max_value=25))
    names = draw(st.lists(st.sampled_from("abcdef"), min_size=n, max_size=n))
    spans: list[SpanTuple] = [(1, 0, "root", 0, draw(st.integers(0, 60)))]
    for i in range(1, n):
        parent = spans[draw(st.integers(0, i - 1))]
        edges = [parent[3], parent[4], spans[-1][3], spans[-1][4]]
        start = draw(st.one_of(st.sampled_from(edges), st.integers(-10, 70)))
        end = draw(st.one_of(st.sampled_from([*edges, start]), st.integers(start - 3, 75)))
        spans.append((i + 1, parent[0], names[i], start, end))
    order = draw(st.sampled_from(["as filed", "shuffled", "reversed"]))
    if order == "shuffled":
        spans = draw(st.permutations(spans))
    elif order == "reversed":
        spans.reverse()
    else:
        spans = spans[1:] + spans[:1]  # the processor files the root last
    return spans


@given(shuffled_trees())
@settings(max_examples=400, deadline=None)
def test_attribution_matches_the_definitions_spelled_out(spans: list[SpanTuple]):
    a = attribute(1, spans)
    critical, self_time = by_definition(1, spans)
    assert (a.critical_path, a.self_time) == (critical, self_time)
    assert sum(a.critical_path.values()) == a.duration
