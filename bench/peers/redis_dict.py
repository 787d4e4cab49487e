"""CPython peer of redis_dict_op_us and redis_queue_op_us.

    python3 redis_dict.py op|queue <iterations>

CPython's multiprocessing has no Redis backend; the comparable Python code
is redis-py (the `redis` module) doing HSET + HGET. When that module is not
installed the peer says so and exits 1, and the row's CPython cell stays
empty with that reason.
"""
import sys

try:
    import redis  # noqa: F401
except ImportError:
    sys.exit("no redis module for Python (redis-py is not installed)")

sys.exit("redis-py is installed, but this peer does not start a server yet")
