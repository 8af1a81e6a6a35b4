"""Client-side pacing per API key, shared by every process, host and triggerer that uses the key.

Certyneo counts requests per key, whatever machine sends them. :mod:`.rule` holds the token-bucket rule;
:mod:`.stores` and :mod:`.redis_store` keep its state in memory, in a file of this machine, or in Redis;
:mod:`.governor` picks the store and falls back when it is unreachable.
"""
