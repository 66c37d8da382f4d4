"""Errors of the jobs flow (no Flask here; the API maps them to problem+json).

JobsError
├── QueryInvalid          422: `errors` = [{field, code, message}] with public names
├── CursorGone            410: the cursor cannot be continued (its query shape is gone)
├── JobNotFound           404: no open, public job with that id
│   └── JobGone           410: it was public and left (closed, unpublished) in the last 30 days
├── SnapshotUnavailable   503: no snapshot yet and the org cannot be reached
└── RefreshFailed         the refresh query failed (the last snapshot keeps being served)
"""

from __future__ import annotations


class JobsError(Exception):
    """Base of the jobs flow's errors."""


class QueryInvalid(JobsError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} query parameter(s) invalid")
        self.errors = errors


class CursorGone(JobsError):
    pass


class JobNotFound(JobsError):
    pass


class JobGone(JobNotFound):
    pass


class SnapshotUnavailable(JobsError):
    pass


class RefreshFailed(JobsError):
    pass
