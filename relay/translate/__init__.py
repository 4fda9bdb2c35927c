"""Dialect translation between clients and channels of other dialects (issue #5).

None is available yet: only channels of the client's own dialect serve a request.
"""


def find(client: str, upstream: str):
    return None
