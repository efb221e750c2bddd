"""`sovhub doctor`: the GB10 stack checked on the box, one line per check (✅ / ⚠ / ❌ and the fix).

Facts are gathered once (`facts.py`: nvidia-smi, /proc/meminfo, the Docker API, ports, files);
each check is a pure function of those facts, the hub config and the compose file (`checks.py`).
`nvfp4.py` is stdlib-only on purpose: the fetch-models container runs it as a script.
"""
