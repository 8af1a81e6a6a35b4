"""The bucket in Redis, shared by every host that uses the key (Celery, Kubernetes, several triggerers).

One server-side script reads the server's clock (``TIME``), refills, takes or drains, and writes back,
atomically: two hosts never both take the last token, and no host's clock matters. The script is
:func:`.rule.apply` in Lua; ``tests/governor`` checks that both give the same answers.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow_provider_certyneo.governor.rule import Drain, Op, Rule

# KEYS[1]: the bucket. ARGV: tokens per second, capacity, amount to drain in seconds (or "take").
SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(saved[1])
local updated = tonumber(saved[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
elseif updated > now + 1 then
  tokens = 0
  updated = now
end
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if ARGV[3] == 'take' then
  tokens = tokens - 1
  if tokens < 0 then wait = -tokens / rate end
else
  tokens = math.min(tokens, 1 - tonumber(ARGV[3]) * rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated', string.format('%.17g', now))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 60)
return string.format('%.17g', wait)
"""
SOCKET_TIMEOUT = 1.0


class RedisStore:
    """The bucket under ``certyneo:rate:<name>`` in the Redis of an Airflow ``redis`` connection.

    The client is made on first use, in whatever thread applies the rule (the async governor calls this
    store in a worker thread), so reading the connection never blocks an event loop."""

    name = "redis"
    blocking_io = True

    def __init__(self, rule: Rule, name: str, redis_conn_id: str) -> None:
        self.rule = rule
        self.key = f"certyneo:rate:{name}"
        self.redis_conn_id = redis_conn_id
        self._script: Any = None
        self._lock = threading.Lock()

    def connect(self) -> Any:
        """The Redis client's registered script, made on first use (call it early to pay the set-up then)."""
        with self._lock:
            if self._script is None:
                from airflow.providers.redis.hooks.redis import RedisHook
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                client = RedisHook(redis_conn_id=self.redis_conn_id).get_conn()
                client.connection_pool.connection_kwargs.update(
                    socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
                )
                # Fail fast: the governor falls back to this host's store instead of stalling a request.
                client.set_retry(Retry(NoBackoff(), 0))
                self._script = client.register_script(SCRIPT)
            return self._script

    def apply(self, op: Op, blocking: bool = True) -> float | None:
        amount = repr(op.seconds) if isinstance(op, Drain) else "take"
        answer = self.connect()(
            keys=[self.key], args=[repr(self.rule.per_second), repr(self.rule.capacity), amount]
        )
        return float(answer)
