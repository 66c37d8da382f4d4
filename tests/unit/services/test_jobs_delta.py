"""Deltas applied in place: the same answers as a full rebuild; catching up; compaction.

The property test drives one index through random edit sequences (upserts of new or
existing records, removals, several per delta), querying it between deltas so that its
cached sort orders, ranges and posting lists are the ones kept in place, and compares every
listing (all pages through the cursor), total, cursor and facet with a :class:`JobIndex`
built from scratch from the same records.

The store tests run on the session's real Redis: a process that misses deltas catches up
from the log, one that fell behind a compaction reloads the newest snapshot and replays the
log from its version, and the log stays bounded.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from ats_gateway.services.jobs import JobsService, SnapshotStore
from ats_gateway.services.jobs.changes import JobChange, SnapshotChanges
from ats_gateway.services.jobs.contract import FilterParam, JobField, JobsContract
from ats_gateway.services.jobs.engine import CursorCodec, JobIndex, JobQuery, SortSpec

CONTRACT = JobsContract(
    sobject="bpats__Job__c",
    fields=(
        JobField("id", "Id", "id", sortable=True),
        JobField("title", "Title__c", "string", sortable=True, searchable=True),
        JobField("department", "Department__c", "picklist", sortable=True, facet=True),
        JobField("city", "City__c", "string", sortable=True, facet=True),
        JobField("description", "Description__c", "html", searchable=True),
        JobField("salary_min", "Salary_Min__c", "number", sortable=True),
        JobField("posted_at", "Date_Posted__c", "date", sortable=True),
    ),
    filters=(
        FilterParam("department", "department"),
        FilterParam("city", "city"),
        FilterParam("posted_after", "posted_at", "gte"),
        FilterParam("posted_before", "posted_at", "lte"),
        FilterParam("salary_min", "salary_min", "gte"),
    ),
    default_sort="-posted_at",
)

IDS = [f"a0M{n:012d}AAA" for n in range(24)]
SORTS = ["-posted_at", "title", "-salary_min", "city,-title", "department,salary_min", "id"]
QUERIES = [
    JobQuery(),
    JobQuery(filters=(("department", ("sales",)),)),
    JobQuery(filters=(("city", ("berlin", "zurich")),)),
    JobQuery(ranges=(("salary_min", 50000.0),)),
    JobQuery(ranges=(("posted_after", "2026-03-01"), ("posted_before", "2026-06-30"))),
    JobQuery(words=("eng",)),
    JobQuery(words=("lead", "python")),
    JobQuery(filters=(("department", ("engineering",)),), words=("senior",)),
]
CODEC = CursorCodec("secret")

records = st.fixed_dictionaries(
    {
        # Case and accent variants: a facet shows one spelling, whichever path built it.
        "title": st.sampled_from(
            ["Senior Engineer", "engineering Lead", "Sales Manager", "Python dev", "", None]
        ),
        "department": st.sampled_from(["Engineering", "engineering", "Sales", "Marketing", None]),
        "city": st.sampled_from(["Berlin", "Zürich", "zurich", "Paris", "", None]),
        "description": st.sampled_from(["<p>Python</p> APIs", "<b>lead</b>", "", None]),
        "salary_min": st.sampled_from([None, 40000, 50000, 50000.5, 80000]),
        "posted_at": st.sampled_from(
            [None, "2026-01-01", "2026-03-01", "2026-06-30", "2026-09-09"]
        ),
    }
)
edit = st.one_of(
    st.tuples(st.just("up"), st.sampled_from(IDS), records),
    st.tuples(st.just("rm"), st.sampled_from(IDS), st.none()),
)


def _record(ident: str, values: dict) -> dict:
    return {"id": ident, **values}


def answers(index: JobIndex) -> list:
    """Every page (ids and cursor) of every query and sort, the totals and the facets."""
    out: list = []
    for query in QUERIES:
        matched = index.match(query)
        out.append(("total", index.n if matched is None else len(matched)))
        out.append(("facets", index.facets(query)))
        for sort in SORTS:
            shaped = JobQuery(query.filters, query.ranges, query.words, SortSpec.parse(sort), 3)
            after = None
            for _ in range(index.n + 2):
                positions, after = index.page(shaped, matched, after)
                cursor = after and CODEC.encode(version="v", query=shaped, key=after)
                out.append(([index.ids[i] for i in positions], cursor))
                if after is None:
                    break
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.dictionaries(st.sampled_from(IDS), records, max_size=16),
    deltas=st.lists(st.lists(edit, min_size=1, max_size=4), min_size=1, max_size=8),
)
def test_deltas_in_place_answer_like_a_rebuild(initial, deltas):
    live = {ident: _record(ident, values) for ident, values in initial.items()}
    index = JobIndex(live.values(), CONTRACT, version="1")
    cursors = []
    for n, delta in enumerate(deltas, start=2):
        answers(index)  # orders, ranges, memos of this version: the ones kept in place
        # A cursor cut before this delta (second page of the first sort) ...
        query = JobQuery(sort=SortSpec.parse(SORTS[n % len(SORTS)]), limit=2)
        _, key = index.page(query, None)
        cursors.append((query, key))
        upserts, removals = {}, set()
        for kind, ident, values in delta:
            if kind == "up":
                upserts[ident] = _record(ident, values)
                removals.discard(ident)
                live[ident] = upserts[ident]
            else:
                upserts.pop(ident, None)
                removals.add(ident)
                live.pop(ident, None)
        index.apply(upserts.values(), sorted(removals), version=str(n), snapshot_at=float(n))
        rebuilt = JobIndex(live.values(), CONTRACT, version=str(n))
        assert answers(index) == answers(rebuilt)
        assert sorted(index.ids) == sorted(live) and index.n == len(live)
        for ident in IDS:
            assert index.get(ident) == live.get(ident)
        # ... continues the same way in the index kept in place and in the rebuilt one.
        for query, key in cursors:
            if key is not None:
                assert index.page(query, None, key) == _same_positions(index, rebuilt, query, key)


def _same_positions(index: JobIndex, rebuilt: JobIndex, query: JobQuery, key) -> tuple:
    """``rebuilt``'s answer to a continued page, in ``index``'s positions."""
    positions, after = rebuilt.page(query, None, key)
    return [index.ids.index(rebuilt.ids[i]) for i in positions], after


# --------------------------------------------------------------------------- the log


def _no_org():
    raise AssertionError("applying changes must not call the org")


@pytest.fixture
def store(redis_client):
    store = SnapshotStore(redis_client, key_prefix="test:delta:", compact_every=4)
    store.clear()
    yield store
    store.clear()


def _service(store: SnapshotStore) -> JobsService:
    """One gateway process's jobs service over the shared store."""
    return JobsService(
        store, contract=lambda: CONTRACT, source=_no_org, query_loader=lambda args: None
    )


def _title(ident: str, title: str) -> JobChange:
    return JobChange("UPDATE", (ident,), {"Title__c": title})


def test_processes_catch_up_from_the_log_and_after_compaction_from_snapshot_and_log(
    store, redis_client
):
    jobs = [_record(i, {"title": f"Job {n}", "city": "Berlin"}) for n, i in enumerate(IDS)]
    store.publish(jobs, snapshot_at=1.0)
    writer, behind, late = _service(store), _service(store), _service(store)
    changes = SnapshotChanges(writer, redis_client)
    assert behind.index().n == len(IDS) and behind.full_loads == 1

    # Two event batches: two small deltas in the log, no snapshot written.
    changes.apply([_title(IDS[0], "Chef")])
    changes.apply([JobChange("DELETE", (IDS[1],)), _title(IDS[2], "Baker")])
    assert store.base() == "1" and writer.compactions == 0
    entries = store.entries("1")
    assert [(e.kind, len(e.upserts), e.removals) for e in entries] == [
        ("delta", 1, []),
        ("delta", 1, [IDS[1]]),
    ]
    index = behind.index()
    assert (behind.full_loads, behind.deltas_applied) == (1, 2)
    assert index.get(IDS[0])["title"] == "Chef" and index.get(IDS[1]) is None
    assert behind.index().version == store.pointer().version == "3"

    # `behind` now misses many deltas; the writer compacts (a new base) on the way.
    for n in range(10):
        changes.apply([_title(IDS[3], f"Edit {n}")])
    assert writer.compactions >= 2
    base = int(store.base())
    assert base > 3
    # Bounded log: it starts at the previous base (XTRIM MINID), nothing older is kept.
    oldest = int(redis_client.xrange(store.key("log"), count=1)[0][0].decode().split("-")[0])
    assert oldest > 4 and store.log_length() <= 2 * store.compact_every + 1
    assert store.log_length() == int(store.pointer().version) - oldest + 1

    caught = behind.index()  # version 3's successors are gone from the log: base + replay
    assert behind.full_loads == 2
    rebuilt = JobIndex(writer.index().records(), CONTRACT)
    assert answers(caught) == answers(rebuilt)
    assert caught.get(IDS[3])["title"] == "Edit 9"

    fresh = late.index()  # a process that starts now: the newest base, then the log after it
    assert late.full_loads == 1 and late.deltas_applied == 0
    assert fresh.version == store.pointer().version
    assert answers(fresh) == answers(rebuilt)


class PointerReadEarlier:
    """``HotKeys`` whose next answer is a value read earlier: a request thread that read
    ``current`` a moment before another thread of its process caught up past it (threads read
    the pointer without a lock, and ``TrackedKeys`` answers from memory until Redis's
    invalidation arrives)."""

    def __init__(self, client) -> None:
        self.client = client
        self.held: bytes | None = None

    def get(self, key: str) -> bytes | None:
        if self.held is not None:
            value, self.held = self.held, None
            return value
        return self.client.get(key)

    def forget(self, key: str) -> None:
        pass


def test_a_pointer_read_before_another_thread_caught_up_costs_no_reload(redis_client):
    hot = PointerReadEarlier(redis_client)
    store = SnapshotStore(redis_client, key_prefix="test:delta:", hot=hot)
    shared = SnapshotStore(redis_client, key_prefix="test:delta:")
    store.clear()
    try:
        jobs = [_record(i, {"title": f"Job {n}"}) for n, i in enumerate(IDS)]
        shared.publish(jobs, snapshot_at=1.0)
        reader = _service(store)
        assert reader.index().version == "1"
        early = redis_client.get(store.key("current"))  # one thread reads version 1 ...
        SnapshotChanges(_service(shared), redis_client).apply([_title(IDS[0], "Chef")])
        assert reader.index().version == "2"  # ... another catches the process up to 2 ...
        hot.held = early
        index = reader.index()  # ... and the first goes on with what it read.
        # The newer index serves it: no reload of the catalogue, no step back to version 1.
        assert index.version == "2" and index.get(IDS[0])["title"] == "Chef"
        assert (reader.full_loads, reader.deltas_applied) == (1, 1)

        # A store whose versions really went back (Redis emptied, the catalogue published
        # again from version 1) is loaded again.
        store.clear()
        shared.publish(jobs, snapshot_at=2.0)
        assert reader.index().get(IDS[0])["title"] == "Job 0" and reader.full_loads == 2
    finally:
        store.clear()


def test_a_repeated_change_makes_no_new_version(store, redis_client):
    store.publish([_record(IDS[0], {"title": "Chef"})], snapshot_at=1.0)
    writer = _service(store)
    changes = SnapshotChanges(writer, redis_client)
    assert changes.apply([_title(IDS[0], "Chef")]).version is None
    assert store.pointer().version == "1" and store.log_length() == 1


def test_feeds_are_not_rebuilt_per_change_but_at_most_every_interval(store, redis_client):
    from ats_gateway.services.feeds import FeedsService, GoneJobs, Organization

    jobs = [_record(i, {"title": f"Job {n}", "city": "Berlin"}) for n, i in enumerate(IDS)]
    store.publish(jobs, snapshot_at=1.0)
    service = _service(store)
    changes = SnapshotChanges(service, redis_client)
    now = [1000.0]
    history = GoneJobs(redis_client, prefix="test:delta:feeds-gone:")
    history.clear()
    feeds = FeedsService(
        service,
        org=Organization("Acme", job_url_template="https://acme.example/jobs/{id}"),
        gone=history,
        rebuild_seconds=300,
        clock=lambda: now[0],
    )
    first = feeds.artifact("indeed.xml")
    sitemap = feeds.artifact("sitemap.xml")
    assert feeds.builds == 2

    for n in range(5):  # a steady trickle of edits within the interval: no rebuild
        changes.apply([_title(IDS[0], f"Renamed {n}")])
        assert service.index().get(IDS[0])["title"] == f"Renamed {n}"  # listings see it
        assert feeds.artifact("indeed.xml") is first
    feeds.wait_rebuilt()
    assert feeds.builds == 2

    now[0] += 301  # the interval passed: the next read starts one rebuild, served the old
    assert feeds.artifact("indeed.xml") is first
    feeds.wait_rebuilt()
    assert feeds.builds == 4  # the feed and the sitemap it had served, once each
    rebuilt = feeds.artifact("indeed.xml")
    assert b"Renamed 4" in rebuilt.body and b"Renamed 4" not in first.body
    assert feeds.artifact("sitemap.xml") is not sitemap
    history.clear()


def test_a_very_sparse_match_pages_the_same_with_or_without_ranks():
    titles = ["Python lead"] * 3 + ["Chef"] * 297
    index = JobIndex(
        [
            _record(f"a0M{n:012d}AAA", {"title": t, "posted_at": f"2026-0{n % 9 + 1}-01"})
            for n, t in enumerate(titles)
        ],
        CONTRACT,
        version="1",
    )
    query = JobQuery(words=("python",), sort=SortSpec.parse("-posted_at"), limit=1)
    matched = index.match(query)
    index.apply([], [], version="2", snapshot_at=2.0)  # a change: ranks to be made again
    pages, after = [], None
    for _ in range(5):  # 3 matches * 64 < 300: sorted by key, no ranking of the catalogue
        positions, after = index.page(query, matched, after)
        pages.append((positions, after))
        if after is None:
            break
    assert query.sort not in index._ranks
    index.order(query.sort)  # now ranked: the other path must agree
    again, after = [], None
    for _ in range(5):
        positions, after = index.page(query, matched, after)
        again.append((positions, after))
        if after is None:
            break
    assert pages == again and len(pages) == 3
