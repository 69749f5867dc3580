"""``weir serve``: the scheduler that fires nodes by their ``schedule`` (and, later, the HTTP
API beside it). It runs nodes through :func:`weir.run.api.run`, as ``weir run`` does."""
