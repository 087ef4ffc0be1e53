"""The registry page: a read-only HTML view of the live registry and of plans.

- `reconciler.page.data`: reads the registry (through `state.read_state` and the audit
  functions) into plain, display-ready data; `build_registry_page` is pure.
- `reconciler.page.render`: plain data -> one self-contained HTML document (Jinja2,
  autoescaped), for the registry and for a plan's JSON document.
- `reconciler.page.server`: the tiny WSGI server of `llm-registry serve`.

Nothing here imports SQLAlchemy or Jinja2 at module level, so that `--help` and
`validate` stay light.
"""
