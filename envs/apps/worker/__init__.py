"""Sandbox worker: the separate process that runs agent code cells for `distillgym.envs.apps.sandbox.Sandbox`.

It holds no app state and no task. The parent runs this package's directory as a plain script (`python -I -S -B
worker/`, empty environment; inside bubblewrap by default, with the directory bound read-only at /sandbox/worker:
see `isolation.py`); `__main__.py` imports the package by its directory name (`worker`), with relative imports only,
so the same modules are `distillgym.envs.apps.worker.*` in the parent. The worker:

1. moves its message channel off fds 0/1 (which become /dev/null), reads its configuration frame (limits, allowed
   modules, and the catalog of apps and apis: names and docs only), and drops to uid 65534 when asked;
2. imports the allowed modules (the only modules agent code may import, served as read-only views without their
   module attributes), then locks itself down: rlimits (address space, CPU, file size 0, few fds, no core dumps, no
   processes) and a PEP 578 audit hook that denies every audited operation but a short allow-list for the rest of its
   life: opening files, importing new modules, os/subprocess/socket/ctypes calls, running new code, frame
   introspection... all raise;
3. serves requests: each cell is parsed and checked (no `_`-prefixed attributes, no dunder names, no frame/generator
   internals), run with restricted builtins in a namespace that lives until the episode (session) changes. `apis`
   in the cell is a proxy: each `apis.<app>.<api>(...)` is sent to the parent, which runs the endpoint on the real
   state and sends back the JSON result or the error, raised in the cell as `ApiError` (or the builtin it names).

Protocol (JSON only, never pickle): frames of a 4-byte big-endian length and UTF-8 JSON.
parent -> worker: the configuration (once), then per cell `{"op": "run", "code", "session", "seq"}`, and the answer
to each call: `{"op": "return", "seq", "value"}` or `{"op": "raise", "seq", "type", "message"}`.
worker -> parent: `{"ready": true, ...}` (once), then per cell any number of `{"op": "call", "seq", "app", "api",
"args", "kwargs"}` and one `{"op": "done", "seq", "kind", "message", "output", "truncated", "commit", "restart",
"cpu"}` (commit: whether the cell's api calls stand, as after a Python exception; never after a kill).

Modules: `wire` (framing and JSON, shared with the parent), `policy` (allow-lists and the static check of a cell),
`guard` (the audit hook, module views, plain copies, gated metaclasses), `channel` (the `apis` proxies) and `serve`
(set-up, lock-down and the serve loop).
"""
