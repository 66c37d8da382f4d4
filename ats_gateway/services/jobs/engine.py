"""The in-memory jobs engine: index one snapshot, then filter, search, sort, page and count.

Pure functions and classes over plain records (dicts keyed by public field names); no I/O.
A :class:`JobIndex` is built once from a full snapshot, then kept current in place by deltas
(:meth:`JobIndex.apply`), and shared by every request of the process, so a listing costs a few
set intersections and a slice, not a scan:

* equality / IN filters: value -> set of positions, per filterable field (case- and
  accent-insensitive, as Salesforce compares text);
* ranges: the field's values sorted once, a bisect per request;
* ``q``: a sorted vocabulary of folded words of the searchable fields; each query word matches
  every word it begins (``engineer`` finds "Engineering"), words are ANDed;
* sort: per (field, direction) an order and a rank per record, built on first use, with the id
  as the tiebreak so the order is total and stable, empty values last in both directions.

Paging is keyset: a cursor carries the sort key and id of the last record shown, so the next
page is "everything after that key" in whatever version is current, never a repeated or
skipped row within one version, and a consistent continuation after a delta or a refresh.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from ats_gateway.services.jobs.contract import JobsContract
from ats_gateway.services.jobs.errors import CursorGone, QueryInvalid
from ats_gateway.services.jobs.text import fold, strip_html, words

DEFAULT_LIMIT = 20
MAX_QUERY_WORDS = 10
#: Listing controls; the rest of a listing's parameters are filters (`job_filters` contract).
CONTROLS = ("q", "sort", "limit", "cursor", "fields")
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")
_EMPTY: frozenset[int] = frozenset()


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class SortSpec:
    """Sort keys in order, each (field, descending); the id always breaks the last tie."""

    keys: tuple[tuple[str, bool], ...]

    @classmethod
    def parse(cls, text: str) -> SortSpec:
        keys = []
        for part in text.split(","):
            part = part.strip()
            if part:
                keys.append((part.removeprefix("-"), part.startswith("-")))
        return cls(tuple(keys))

    def render(self) -> str:
        return ",".join(("-" if desc else "") + name for name, desc in self.keys)


@dataclass(frozen=True)
class CursorKey:
    """Where the last page ended: the sort key values of its last record, and its id."""

    values: tuple[Any, ...]
    id: str


@dataclass(frozen=True)
class JobQuery:
    """A validated listing or facet query (public names; values already normalised)."""

    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # `in` param -> folded values
    ranges: tuple[tuple[str, Any], ...] = ()  # `gte`/`lte` param -> bound
    words: tuple[str, ...] = ()  # folded words of q, ANDed
    sort: SortSpec = SortSpec((("id", False),))
    limit: int = DEFAULT_LIMIT
    fields: tuple[str, ...] | None = None
    cursor: str | None = None

    def signature(self) -> str:
        """What a cursor is bound to: the filters, q and sort (not limit, fields or cursor)."""
        return self._signature

    def canonical(self) -> str:
        """A stable text of the whole query (same meaning -> same text), for ETags and caches."""
        return self._canonical

    # Computed once per query: the service remembers parsed queries, and a career site asks
    # the same few again and again.
    @functools.cached_property
    def _signature(self) -> str:
        shape = [list(self.filters), list(self.ranges), self.words, self.sort.render()]
        digest = hashlib.sha256(json.dumps(shape, separators=(",", ":")).encode()).hexdigest()
        return digest[:16]

    @functools.cached_property
    def _canonical(self) -> str:
        return json.dumps(
            [self.signature(), self.limit, self.fields, self.cursor], separators=(",", ":")
        )


def _error(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def from_listing(listing: Any, contract: JobsContract) -> JobQuery:
    """A :class:`JobQuery` from the metadata layer's validated ``ListingQuery`` (the
    `job_filters` schema has checked names, types, picklist values, sort, limit and fields)."""
    filters: list[tuple[str, tuple[str, ...]]] = []
    ranges: list[tuple[str, Any]] = []
    for flt in listing.filters:
        values = flt.value if isinstance(flt.value, (list, tuple)) else [flt.value]
        if flt.op == "in":
            filters.append((flt.name, tuple(sorted({_eq_key(_plain(v)) for v in values}))))
        else:
            kind = contract.field(flt.field).kind
            ranges.append((flt.name, _sort_key(kind, _plain(values[0]))))
    found = list(dict.fromkeys(words(listing.q or "")))
    if len(found) > MAX_QUERY_WORDS:
        raise QueryInvalid([_error("q", "too_many_words", f"At most {MAX_QUERY_WORDS} words.")])
    sort = SortSpec(tuple((key.field, key.descending) for key in listing.sort))
    fields = None
    if listing.fields:
        fields = tuple(dict.fromkeys([contract.id_field, *listing.fields]))
    return JobQuery(
        filters=tuple(sorted(filters)),
        ranges=tuple(sorted(ranges)),
        words=tuple(sorted(found)),
        sort=sort if sort.keys else SortSpec.parse(contract.default_sort),
        limit=int(listing.limit),
        fields=fields,
        cursor=listing.cursor or None,
    )


def _plain(value: Any) -> Any:
    """Decimal -> float, date -> ISO text: the snapshot's own representations."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _eq_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    return fold(str(value))


def _sort_key(kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return 1 if value else 0
    if kind in ("string", "picklist"):
        return fold(value)
    if kind == "html":
        return fold(strip_html(value))
    return str(value)


class _Desc:
    """Reverses the order of a value inside a sort key tuple."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __gt__(self, other: _Desc) -> bool:
        return other.value > self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


def _value_key(sort: SortSpec, values: Sequence[Any], ident: str) -> tuple[Any, ...]:
    """The position of a record in ``sort``'s order, from its values (empty values last)."""
    parts: list[tuple[Any, ...]] = []
    for (_, desc), value in zip(sort.keys, values, strict=True):
        if value is None:
            parts.append((1,))
        else:
            parts.append((0, _Desc(value) if desc else value))
    return (*parts, ident)


# --------------------------------------------------------------------------- the index


class JobIndex:
    """The public jobs' records, indexed for filtering, search, sorting and facets.

    Built in bulk from a snapshot, then kept current **in place** by :meth:`apply` (a delta:
    changed records and removed ids): only the changed records' entries in the posting
    lists, ranges, vocabulary, sort keys and cached sort orders move, so a change costs what
    changed, not the catalogue. Positions are dense (a removal moves the last record into
    the freed position), so ``docs`` and ``ids`` never hold holes and memory does not grow
    under a steady stream of edits.

    Every gunicorn thread shares one index: readers hold :attr:`lock` while they compute a
    page or facets, :meth:`apply` holds it while it mutates (a few microseconds per record).
    Records are never mutated: an update replaces the dict, so a copy of ``docs`` taken under
    the lock (:meth:`records`) stays a consistent catalogue while the index moves on.
    """

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]],
        contract: JobsContract,
        *,
        version: str = "",
        snapshot_at: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.contract = contract
        self.version = version
        self.snapshot_at = snapshot_at
        id_field = self._id_field = contract.id_field
        self.docs: list[dict[str, Any]] = sorted(
            (dict(r) for r in records), key=lambda r: str(r[id_field])
        )
        self.ids: list[str] = [str(d[id_field]) for d in self.docs]
        self._pos15 = {ident[:15]: i for i, ident in enumerate(self.ids)}
        self._eq_fields = sorted({f.field for f in contract.filters if f.op == "in"})
        self._eq_fields = sorted(set(self._eq_fields) | set(contract.facets))
        self._eq: dict[str, dict[str, set[int]]] = {}
        #: folded key -> (id, value shown): the value of the record with the smallest id, so
        #: a facet shows the same spelling however the index got here
        self._display: dict[str, dict[str, tuple[str, Any] | None]] = {}
        for name in self._eq_fields:
            buckets: dict[str, set[int]] = {}
            display: dict[str, tuple[str, Any] | None] = {}
            for i, doc in enumerate(self.docs):
                value = doc.get(name)
                if value is None or value == "":
                    continue
                key = _eq_key(value)
                buckets.setdefault(key, set()).add(i)
                display.setdefault(key, (self.ids[i], value))
            self._eq[name] = buckets
            self._display[name] = display
        self._range_kinds: dict[str, str] = {}
        for flt in contract.filters:
            if flt.op != "in":
                self._range_kinds.setdefault(flt.field, contract.field(flt.field).kind)
        self._ranges: dict[str, tuple[list[Any], list[int]]] = {}
        for name, kind in self._range_kinds.items():
            pairs = [
                (_sort_key(kind, doc.get(name)), i)
                for i, doc in enumerate(self.docs)
                if doc.get(name) not in (None, "")
            ]
            pairs.sort()
            self._ranges[name] = ([p[0] for p in pairs], [p[1] for p in pairs])
        self._searchable = [
            (name, contract.field(name).kind == "html") for name in contract.searchable
        ]
        vocab: dict[str, set[int]] = {}
        for i, doc in enumerate(self.docs):
            for word in self._words_of(doc):
                vocab.setdefault(word, set()).add(i)
        self._vocab = vocab
        self._tokens = sorted(vocab)
        self._keys: dict[str, list[Any]] = {}
        self._orders: dict[SortSpec, list[int]] = {}
        self._ranks: dict[SortSpec, list[int]] = {}
        self._memo: dict[tuple[Any, ...], frozenset[int]] = {}

    @property
    def n(self) -> int:
        return len(self.docs)

    def records(self) -> list[dict[str, Any]]:
        """A consistent copy of the catalogue (the list only; records are never mutated)."""
        with self.lock:
            return list(self.docs)

    def _words_of(self, doc: Mapping[str, Any]) -> set[str]:
        found: set[str] = set()
        for name, html in self._searchable:
            value = doc.get(name)
            if value:
                found.update(words(strip_html(value) if html else str(value)))
        return found

    # -- changes in place ---------------------------------------------------------------

    def apply(
        self,
        upserts: Iterable[Mapping[str, Any]],
        removals: Iterable[str],
        *,
        version: str,
        snapshot_at: float,
    ) -> None:
        """Apply one delta: ``upserts`` (whole public records) replace or add, ``removals``
        (15- or 18-character ids) leave; then the index is ``version``."""
        with self.lock:
            moved = False
            for ident in removals:
                moved = self._remove(str(ident)) or moved
            touched: list[int] = []
            for record in upserts:
                doc = dict(record)
                ident = str(doc[self._id_field])
                i = self._pos15.get(ident[:15])
                if i is None:
                    i = len(self.docs)
                    self.docs.append(doc)
                    self.ids.append(ident)
                    for keys in self._keys.values():
                        keys.append(None)
                    self._pos15[ident[:15]] = i
                else:
                    self._unindex(i)
                    self.docs[i] = doc
                    self.ids[i] = ident
                self._index(i)
                touched.append(i)
            if moved:
                # A removal moved a record to another position: every result is suspect.
                self._memo = {}
            else:
                self._patch_memo(touched)
            self._ranks = {}  # remade on demand
            self.version = version
            self.snapshot_at = snapshot_at

    def _patch_memo(self, touched: list[int]) -> None:
        """Keep remembered query results (q words, IN lists, ranges) true for the records
        at ``touched`` (positions unchanged): a title edit copies only the results it
        changes, instead of every query recomputing its set after each change."""
        if not touched or not self._memo:
            return
        word_sets = {i: self._words_of(self.docs[i]) for i in touched}
        for key, members in list(self._memo.items()):
            add, drop = set(), set()
            for i in touched:
                now = self._member(key, self.docs[i], word_sets[i])
                if now != (i in members):
                    (add if now else drop).add(i)
            if add or drop:
                self._memo[key] = (members | add) - drop

    def _member(self, key: tuple[Any, ...], doc: Mapping[str, Any], found: set[str]) -> bool:
        """Whether a record with ``doc`` (and words ``found``) is in memo entry ``key``."""
        if len(key) == 2:  # ("q", word)
            return any(w.startswith(key[1]) for w in found)
        field, op, bound = key
        value = doc.get(field)
        if value is None or value == "":
            return False
        if op == "in":
            return _eq_key(value) in bound
        value = _sort_key(self._range_kinds[field], value)
        return value >= bound if op == "gte" else value <= bound

    def _remove(self, ident: str) -> bool:
        """Take the record out; True when positions changed (one left, another may have
        moved into its place)."""
        i = self._pos15.get(ident[:15])
        if i is None:
            return False
        last = len(self.docs) - 1
        self._unindex(i)
        del self._pos15[ident[:15]]
        if i != last:
            # Keep positions dense: the last record moves into the freed place.
            self._unindex(last)
            self.docs[i], self.ids[i] = self.docs[last], self.ids[last]
            self._pos15[self.ids[i][:15]] = i
        self.docs.pop()
        self.ids.pop()
        for keys in self._keys.values():
            keys.pop()
        if i != last:
            self._index(i)
        return True

    def _unindex(self, i: int) -> None:
        """Take position ``i`` out of every structure (its record and keys still in place)."""
        doc, ident = self.docs[i], self.ids[i]
        for sort, order in self._orders.items():
            del order[self._locate(order, sort, i)]
        for name in self._eq_fields:
            value = doc.get(name)
            if value is None or value == "":
                continue
            key = _eq_key(value)
            bucket = self._eq[name][key]
            bucket.discard(i)
            if not bucket:
                del self._eq[name][key]
                del self._display[name][key]
            elif (self._display[name][key] or ("",))[0] == ident:
                # Its spelling was the one shown: found again when a facet is next read
                # (an update re-adds the record right away; no scan of the bucket for it).
                self._display[name][key] = None
        for name, kind in self._range_kinds.items():
            if doc.get(name) in (None, ""):
                continue
            keys, positions = self._ranges[name]
            j = bisect.bisect_left(keys, _sort_key(kind, doc.get(name)))
            while positions[j] != i:
                j += 1
            del keys[j]
            del positions[j]
        for word in self._words_of(doc):
            members = self._vocab[word]
            members.discard(i)
            if not members:
                del self._vocab[word]
                del self._tokens[bisect.bisect_left(self._tokens, word)]

    def _index(self, i: int) -> None:
        """Put position ``i`` (``docs[i]`` / ``ids[i]`` set) into every structure."""
        doc, ident = self.docs[i], self.ids[i]
        for name, keys in self._keys.items():
            keys[i] = _sort_key(self.contract.field(name).kind, doc.get(name))
        for sort, order in self._orders.items():
            order.insert(self._insertion(order, sort, i), i)
        for name in self._eq_fields:
            value = doc.get(name)
            if value is None or value == "":
                continue
            key = _eq_key(value)
            self._eq[name].setdefault(key, set()).add(i)
            display = self._display[name]
            if key not in display:
                display[key] = (ident, value)
            else:
                shown = display[key]
                if shown is not None and ident < shown[0]:
                    display[key] = (ident, value)
        for name, kind in self._range_kinds.items():
            if doc.get(name) in (None, ""):
                continue
            keys, positions = self._ranges[name]
            value = _sort_key(kind, doc.get(name))
            j = bisect.bisect_right(keys, value)
            keys.insert(j, value)
            positions.insert(j, i)
        for word in self._words_of(doc):
            members = self._vocab.get(word)
            if members is None:
                members = self._vocab[word] = set()
                bisect.insort(self._tokens, word)
            members.add(i)

    def _full_key(self, i: int, sort: SortSpec) -> tuple[Any, ...]:
        here = self.key_of(i, sort)
        return _value_key(sort, here.values, here.id)

    def _insertion(self, order: list[int], sort: SortSpec, i: int) -> int:
        """Where position ``i`` belongs in ``order`` (binary search by its key)."""
        target = self._full_key(i, sort)
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._full_key(order[mid], sort) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _locate(self, order: list[int], sort: SortSpec, i: int) -> int:
        j = self._insertion(order, sort, i)
        if j < len(order) and order[j] == i:
            return j
        return order.index(i)  # not reached: keys are unique (the id breaks ties)

    # -- lookups ------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The record with this 15- or 18-character id, or None."""
        if not _ID.match(job_id):
            return None
        with self.lock:
            i = self._pos15.get(job_id[:15])
            if i is None:
                return None
            if len(job_id) == 18 and job_id[15:].upper() != self.ids[i][15:].upper():
                return None
            return self.docs[i]

    def project(self, doc: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
        names = fields or self.contract.exposed
        return {name: doc.get(name) for name in names}

    # -- matching -----------------------------------------------------------------------

    def _memoized(self, key: tuple[Any, ...], compute) -> frozenset[int]:
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > 8192:
                self._memo.clear()
            found = self._memo[key] = frozenset(compute())
        return found

    def _word_set(self, word: str) -> AbstractSet[int]:
        def compute() -> set[int]:
            hits: set[int] = set()
            i = bisect.bisect_left(self._tokens, word)
            while i < len(self._tokens) and self._tokens[i].startswith(word):
                hits |= self._vocab[self._tokens[i]]
                i += 1
            return hits

        return self._memoized(("q", word), compute)

    def _range_set(self, field: str, op: str, bound: Any) -> AbstractSet[int]:
        keys, positions = self._ranges[field]

        def compute() -> list[int]:
            if op == "gte":
                return positions[bisect.bisect_left(keys, bound) :]
            return positions[: bisect.bisect_right(keys, bound)]

        return self._memoized((field, op, bound), compute)

    def _in_set(self, field: str, keys: tuple[str, ...]) -> AbstractSet[int]:
        buckets = self._eq.get(field, {})
        # Memoized even for one value: the buckets are mutable sets (kept in place), and a
        # frozen copy per version is what lets intersections return them without copying.
        return self._memoized((field, "in", keys), lambda: _union(buckets, keys))

    def constraint_sets(self, query: JobQuery) -> list[tuple[str, AbstractSet[int]]]:
        """(field constrained, matching positions) for each constraint of ``query``."""
        sets: list[tuple[str, AbstractSet[int]]] = []
        for param, keys in query.filters:
            flt = self.contract.filter(param)
            sets.append((flt.field, self._in_set(flt.field, keys)))
        for param, bound in query.ranges:
            flt = self.contract.filter(param)
            sets.append((flt.field, self._range_set(flt.field, flt.op, bound)))
        for word in query.words:
            sets.append(("", self._word_set(word)))
        return sets

    def match(self, query: JobQuery) -> frozenset[int] | None:
        """Positions matching every constraint; None means every record."""
        with self.lock:
            return _intersect([s for _, s in self.constraint_sets(query)])

    # -- ordering and paging ------------------------------------------------------------

    def _sort_keys(self, name: str) -> list[Any]:
        keys = self._keys.get(name)
        if keys is None:
            kind = self.contract.field(name).kind
            keys = self._keys[name] = [_sort_key(kind, d.get(name)) for d in self.docs]
        return keys

    def order(self, sort: SortSpec) -> tuple[list[int], list[int]]:
        """(positions in order, rank of each position) for ``sort``; the id breaks ties."""
        with self.lock:
            order = self._order(sort)
            return order, self._rank(sort, order)

    def _order(self, sort: SortSpec) -> list[int]:
        """Positions in ``sort``'s order: built once per sort, then kept in place by
        :meth:`apply`."""
        order = self._orders.get(sort)
        if order is None:
            columns = []
            for name, desc in sort.keys:
                keys = self._sort_keys(name)
                dense = {v: r for r, v in enumerate(sorted({k for k in keys if k is not None}))}
                columns.append(
                    [(1, 0) if k is None else (0, -dense[k] if desc else dense[k]) for k in keys]
                )
            ids = self.ids
            order = sorted(range(self.n), key=lambda i: (*[c[i] for c in columns], ids[i]))
            if len(self._orders) > 64:
                self._orders.clear()
                self._ranks.clear()
            self._orders[sort] = order
        return order

    def _rank(self, sort: SortSpec, order: list[int]) -> list[int]:
        """Each position's place in ``order``: O(n) after a change, so made only when a
        sparse match needs it (a listing without filters, or a dense one, never does)."""
        rank = self._ranks.get(sort)
        if rank is None:
            rank = [0] * self.n
            for r, i in enumerate(order):
                rank[i] = r
            self._ranks[sort] = rank
        return rank

    def key_of(self, position: int, sort: SortSpec) -> CursorKey:
        values = tuple(self._sort_keys(name)[position] for name, _ in sort.keys)
        return CursorKey(values, self.ids[position])

    def _start(self, order: list[int], sort: SortSpec, after: CursorKey) -> int:
        """The first place in ``order`` strictly after ``after`` (binary search by value, so a
        key cut from another version lands where it belongs in this one)."""
        if len(after.values) != len(sort.keys):
            raise CursorGone("the cursor does not fit this sort")
        try:
            target = _value_key(sort, after.values, after.id)
            lo, hi = 0, len(order)
            while lo < hi:
                mid = (lo + hi) // 2
                if self._full_key(order[mid], sort) > target:
                    hi = mid
                else:
                    lo = mid + 1
        except TypeError as exc:  # a key whose type no longer compares (contract changed)
            raise CursorGone("the cursor's sort key no longer applies") from exc
        return lo

    def page(
        self,
        query: JobQuery,
        matched: AbstractSet[int] | None,
        after: CursorKey | None = None,
    ) -> tuple[list[int], CursorKey | None]:
        """Up to ``query.limit`` positions after ``after``, and the key to continue from."""
        with self.lock:
            order = self._order(query.sort)
            start = self._start(order, query.sort, after) if after is not None else 0
            want = query.limit + 1
            if matched is None:
                picked = order[start : start + want]
            elif len(matched) * 16 >= self.n:
                # Dense: walk the order; about limit * n / len(matched) steps.
                picked = []
                for i in itertools.islice(order, start, None):
                    if i in matched:
                        picked.append(i)
                        if len(picked) == want:
                            break
            elif query.sort not in self._ranks and len(matched) * 64 < self.n:
                # Very sparse, just after a change: sorting the few matches by their keys
                # is cheaper than ranking the whole catalogue again.
                sort = query.sort
                keyed = sorted(matched, key=lambda i: self._full_key(i, sort))
                if start:
                    keyed = [i for i in keyed if self._locate(order, sort, i) >= start]
                picked = keyed[:want]
            else:
                rank = self._rank(query.sort, order)
                ranks = sorted(r for r in map(rank.__getitem__, matched) if r >= start)
                picked = [order[r] for r in ranks[:want]]
            if len(picked) > query.limit:
                picked = picked[: query.limit]
                return picked, self.key_of(picked[-1], query.sort)
            return picked, None

    def _shown(self, name: str, key: str, members: AbstractSet[int]) -> Any:
        """The spelling a facet value is shown with: that of the record with the smallest id."""
        shown = self._display[name][key]
        if shown is None:
            shown = min((self.ids[j], self.docs[j].get(name)) for j in members)
            self._display[name][key] = shown
        return shown[1]

    # -- facets -------------------------------------------------------------------------

    def facets(self, query: JobQuery) -> dict[str, list[dict[str, Any]]]:
        """Counts per value of each facet field, under every constraint but the field's own.

        So a menu shows, for each department, how many jobs choosing it would list given the
        other filters: the count of ``department=X`` is that listing's ``meta.total``.
        """
        with self.lock:
            sets = self.constraint_sets(query)
            out: dict[str, list[dict[str, Any]]] = {}
            for name in self.contract.facets:
                matched = _intersect([s for field, s in sets if field != name])
                counts = []
                for key, members in self._eq[name].items():
                    count = len(members) if matched is None else len(members & matched)
                    if count:
                        counts.append({"value": self._shown(name, key, members), "count": count})
                counts.sort(key=lambda c: (-c["count"], fold(str(c["value"]))))
                out[name] = counts
            return out


def _union(buckets: Mapping[str, AbstractSet[int]], keys: Iterable[str]) -> set[int]:
    out: set[int] = set()
    for key in keys:
        out |= buckets.get(key, _EMPTY)
    return out


def _intersect(sets: list[AbstractSet[int]]) -> frozenset[int] | None:
    if not sets:
        return None
    sets = sorted(sets, key=len)
    result = sets[0]
    for other in sets[1:]:
        if not result:
            break
        result = result & other
    return frozenset(result)


# --------------------------------------------------------------------------- cursors


class CursorCodec:
    """Opaque, signed cursors: ``{version, query signature, sort, last key}``.

    A cursor is bound to the query's filters and sort (another query -> 422), carries the
    snapshot version it was cut from (for diagnostics) and continues by key, so it stays
    meaningful after the snapshot is refreshed.
    """

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret or "ats-gateway-jobs", salt="jobs-cursor")

    def encode(self, *, version: str, query: JobQuery, key: CursorKey) -> str:
        payload = {"v": version, "h": query.signature(), "k": [list(key.values), key.id]}
        return self._serializer.dumps(payload)

    def decode(self, token: str, query: JobQuery) -> tuple[CursorKey, str]:
        """(key to continue after, snapshot version the cursor was cut from)."""
        try:
            payload = self._serializer.loads(token)
            values, ident = payload["k"]
            version, signature = str(payload["v"]), str(payload["h"])
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise QueryInvalid(
                [_error("cursor", "invalid", "Not a cursor this API issued; start without one.")]
            ) from exc
        if signature != query.signature():
            raise QueryInvalid(
                [
                    _error(
                        "cursor",
                        "mismatch",
                        "This cursor belongs to a query with other filters, q or sort; repeat "
                        "the query that produced it, or start without a cursor.",
                    )
                ]
            )
        if not isinstance(ident, str) or not isinstance(values, list):
            raise CursorGone("the cursor's key has an unexpected shape")
        for value in values:
            if isinstance(value, bool) or not (
                value is None or isinstance(value, (str, int, float))
            ):
                raise CursorGone("the cursor's key has an unexpected shape")
        return CursorKey(tuple(values), ident), version
