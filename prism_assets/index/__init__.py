"""The cross-title index (signals `search_index` and `proxy`; LanceDB behind `SearchBackend`).

`DOMAIN` is built on first access: the serving API imports this package's readers (`backend`,
`tables`, `features`, `search`) without Dagster or the model stack.
"""


def __getattr__(name):
    if name == "DOMAIN":
        from .domain import DOMAIN

        return DOMAIN
    raise AttributeError(name)
